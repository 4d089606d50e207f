package testenv

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ShortLivedToken returns a service-account token of the cluster that
// expires after ttl. The apiserver's TokenRequest refuses lifetimes under
// 10 minutes, so the token is signed here the way the apiserver signs
// bound tokens, with the cluster's own service-account signing key and
// issuer (read from the testbed's kwokctl configuration): to the apiserver
// it is a real token, and it really expires.
func ShortLivedToken(t testing.TB, c Cluster, namespace, name, uid string, ttl time.Duration) string {
	t.Helper()
	cfg, err := os.ReadFile(filepath.Join(os.Getenv("CLUSTERGRAPH_TESTBED_DIR"), "clusters", strings.TrimPrefix(c.Context, "kwok-"), "kwok.yaml"))
	if err != nil {
		t.Fatalf("the testbed's cluster configuration: %v", err)
	}
	flag := func(name string) string {
		for _, line := range strings.Split(string(cfg), "\n") {
			if _, v, ok := strings.Cut(strings.TrimSpace(line), "--"+name+"="); ok {
				return v
			}
		}
		t.Fatalf("no --%s in the apiserver's flags", name)
		return ""
	}
	keyPEM, err := os.ReadFile(flag("service-account-signing-key-file"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		t.Fatal("the signing key is not PEM")
	}
	key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("the signing key: %v", err)
	}
	issuer := flag("service-account-issuer")
	now := time.Now()
	claims := map[string]any{
		"iss": issuer, "aud": []string{issuer}, "sub": "system:serviceaccount:" + namespace + ":" + name,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(ttl).Unix(),
		"kubernetes.io": map[string]any{"namespace": namespace, "serviceaccount": map[string]any{"name": name, "uid": uid}},
	}
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signed := enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + enc(claims)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}
