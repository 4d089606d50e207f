package k8s

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestClusterFromSecret(t *testing.T) {
	kubeconfig := func(user string, extra string) []byte {
		return []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://10.0.0.1:6443"` + extra + `}}]
users: [{name: u, user: {` + user + `}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`)
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		data   map[string]string
		want   string // error substring, "" for none
		server string
	}{
		{"token and server", nil, map[string]string{"server": "https://10.0.0.1:6443", "token": "t"}, "", "https://10.0.0.1:6443"},
		{"client certificate", nil, map[string]string{"server": "https://h", "tls.crt": "c", "tls.key": "k"}, "", "https://h"},
		{"kubeconfig", nil, map[string]string{"kubeconfig": string(kubeconfig("token: t", ""))}, "", "https://10.0.0.1:6443"},
		{"nothing", nil, map[string]string{}, `neither key "kubeconfig" nor key "server"`, ""},
		{"not a URL", nil, map[string]string{"server": "10.0.0.1", "token": "t"}, "not an http(s) URL", ""},
		{"no credential", nil, map[string]string{"server": "https://h"}, "no credential", ""},
		{"half a certificate", nil, map[string]string{"server": "https://h", "tls.crt": "c"}, "go together", ""},
		{"insecure with a CA", nil, map[string]string{"server": "https://h", "token": "t", "ca.crt": "x", "insecure-skip-tls-verify": "true"}, "exclude each other", ""},
		{"insecure not a bool", nil, map[string]string{"server": "https://h", "token": "t", "insecure-skip-tls-verify": "yes"}, "must be true or false", ""},
		{"malformed kubeconfig", nil, map[string]string{"kubeconfig": "not: [a kubeconfig"}, "not a kubeconfig (YAML or JSON of kind Config, apiVersion v1; the parser stopped at line 1)", ""},
		{"another apiVersion", nil, map[string]string{"kubeconfig": "apiVersion: v9\nkind: Config\n"}, "not a kubeconfig (YAML or JSON of kind Config, apiVersion v1)", ""},
		{"exec", nil, map[string]string{"kubeconfig": string(kubeconfig("exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/sh}", ""))}, "exec and auth-provider", ""},
		{"token file", nil, map[string]string{"kubeconfig": string(kubeconfig("tokenFile: /etc/passwd", ""))}, "names a file", ""},
		{"CA file", nil, map[string]string{"kubeconfig": string(kubeconfig("token: t", ", certificate-authority: /etc/ca.crt"))}, "certificate-authority names a file", ""},
		{"no current context", nil, map[string]string{"kubeconfig": strings.NewReplacer("current-context: x", "",
			"contexts: [{name: x, context: {cluster: c, user: u}}]", "contexts: [{name: x, context: {cluster: c, user: u}}, {name: z, context: {cluster: c, user: u}}]").Replace(string(kubeconfig("token: t", "")))}, "no current context", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sec", Namespace: "ns", Labels: tc.labels}, Data: map[string][]byte{}}
			for k, v := range tc.data {
				s.Data[k] = []byte(v)
			}
			name, cfg, err := clusterFromSecret(s)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "secret ns/sec")):
				t.Fatalf("error %v, want one naming the Secret and %q", err, tc.want)
			case tc.want == "" && cfg.Host != tc.server:
				t.Fatalf("server %q, want %q", cfg.Host, tc.server)
			}
			if name != "sec" {
				t.Errorf("name %q, want the Secret's", name)
			}
		})
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sec", Labels: map[string]string{ClusterNameLabel: "prod"}}, Data: map[string][]byte{"server": []byte("https://h"), "token": []byte("t")}}
	if name, _, _ := clusterFromSecret(s); name != "prod" {
		t.Errorf("named by label: %q, want prod", name)
	}
}

// TestSecretWants: a name taken by the kubeconfig or an earlier Secret
// turns a Secret into a broken entry under its own reference.
func TestSecretWants(t *testing.T) {
	good := func(name, cluster string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{ClusterNameLabel: cluster}},
			Data: map[string][]byte{"server": []byte("https://h"), "token": []byte("t")}}
	}
	w := secretWants([]*corev1.Secret{good("b", "one"), good("a", "one"), good("c", "ctx")}, func(n string) bool { return n == "ctx" }, nil)
	if w["one"].config == nil || w["one"].source != "secret ns/a" {
		t.Errorf("one: %+v, want the first Secret by name", w["one"])
	}
	for _, ref := range []string{"secret:ns/b", "secret:ns/c"} {
		if w[ref].broken == nil || !strings.Contains(w[ref].broken.Error(), "already taken") {
			t.Errorf("%s: %+v, want broken: name taken", ref, w[ref])
		}
	}
}

// secretMarker stands for a credential in FuzzClusterSecretErrors.
const secretMarker = "Zq9s3cr3tW"

// FuzzClusterSecretErrors: whatever a cluster Secret holds, the error that
// clustergraph shows (in `clusters`, to any caller) never quotes a
// credential. The fuzzer shapes the kubeconfig around credentials written
// as "TKN", each replaced by a marker before parsing.
func FuzzClusterSecretErrors(f *testing.F) {
	for _, kc := range []string{
		"apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://h\"}}]\nusers: [{name: u, user: {token: TKN}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
		"apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://h\", certificate-authority-data: TKN}}]\nusers: [{name: u, user: {client-certificate-data: TKN, client-key-data: TKN}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n",
		"users:\n- name: u\n  user:\n    token: TKN\n    username: admin\n    password: TKN\n",
		"users: [{name: u, user: {token: [TKN]}}]",
		"users: [{name: u, user: {token: {TKN: 1}}}]",
		"{\"users\": [{\"name\": \"u\", \"user\": {\"token\": TKN}}]}",
		"users: [{name: u, user: {token: \"TKN}]",
		"clusters: [{name: c, cluster: {server: https://h, certificate-authority-data: \"TKN!\"}}]",
		"TKN",
		"users: [{name: u, user: {TKN}}]",
		"users: [{name: u, user: {token: TKN\n  bad: [}}]",
		"apiVersion: TKN\nkind: Config\n",
		"apiVersion: v1\nkind: TKN\n",
	} {
		f.Add(kc, "server", "token")
	}
	f.Fuzz(func(t *testing.T, kc, k1, k2 string) {
		kc = strings.ReplaceAll(kc, "TKN", secretMarker)
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sec", Namespace: "ns"}, Data: map[string][]byte{"kubeconfig": []byte(kc)}}
		check := func(s *corev1.Secret) {
			if _, _, err := clusterFromSecret(s); err != nil && strings.Contains(err.Error(), secretMarker) {
				t.Fatalf("the error quotes a credential: %v", err)
			}
		}
		check(s)
		// The keyed form: credentials under any key but server's.
		s.Data = map[string][]byte{"server": []byte("https://h"), k1: []byte(secretMarker), k2: []byte(secretMarker)}
		if k1 != "server" && k2 != "server" && !strings.Contains(k1+k2, "insecure") {
			check(s)
		}
	})
}
