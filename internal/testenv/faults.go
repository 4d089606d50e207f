package testenv

// Faults for the clusters StartCluster starts (never the shared seeded
// ones): pause, kill and restart their processes, and reach their etcd
// directly. kwokctl's binary runtime keeps each process's pid in
// clusters/NAME/pids/COMPONENT.pid and its output in logs/COMPONENT.log;
// `cluster.sh down` stops the pids it finds there, so a restarted process
// records its new pid in the same file.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// APIServer is kwokctl's name for the kube-apiserver component.
const APIServer = "kube-apiserver"

// dir is the cluster's kwokctl folder (kubeconfig, pids, logs, etcd data).
func (c Cluster) dir() string { return filepath.Dir(c.Kubeconfig) }

// mustBePrivate fails the test when c is one of the shared seeded clusters,
// which other tests read meanwhile: faults only hit a test's own cluster.
func (c Cluster) mustBePrivate(t testing.TB) {
	t.Helper()
	for _, p := range filepath.SplitList(os.Getenv(EnvKubeconfigs)) {
		if filepath.Clean(p) == filepath.Clean(c.Kubeconfig) {
			t.Fatalf("%s is a shared test cluster: inject faults only into one from StartCluster", c.Context)
		}
	}
}

// Pid is the pid of one of the cluster's processes (kube-apiserver, etcd,
// kube-controller-manager, ...).
func (c Cluster) Pid(t testing.TB, component string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir(), "pids", component+".pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file of %s: %v", component, err)
	}
	return pid
}

// Pause stops one of the cluster's processes with SIGSTOP: it keeps its
// sockets, so clients connect and send but get no answer, as from a
// blackholed or hung server. The returned function resumes it (SIGCONT);
// it also runs when the test ends.
func (c Cluster) Pause(t testing.TB, component string) (resume func()) {
	t.Helper()
	c.mustBePrivate(t)
	pid := c.Pid(t, component)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP %s (%d): %v", component, pid, err)
	}
	resumed := false
	resume = func() {
		if !resumed {
			resumed = true
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)
	return resume
}

// RestartAPIServer kills the cluster's kube-apiserver with SIGKILL (a
// crash: its watchers get no goodbye), runs down while it is gone (nil for
// nothing), starts it again with the same command line, environment and
// folder, and waits until it answers /readyz.
func (c Cluster) RestartAPIServer(t testing.TB, down func()) {
	t.Helper()
	c.mustBePrivate(t)
	pid := c.Pid(t, APIServer)
	args, err := procStrings(pid, "cmdline")
	if err != nil {
		t.Fatal(err)
	}
	env, err := procStrings(pid, "environ")
	if err != nil {
		t.Fatal(err)
	}
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL %s (%d): %v", APIServer, pid, err)
	}
	waitGone(t, pid)
	if down != nil {
		down()
	}
	logf, err := os.OpenFile(filepath.Join(c.dir(), "logs", APIServer+".log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = cwd, env, logf, logf
	// Its own session, as kwokctl starts it: signals to the test's process
	// group do not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s again: %v", APIServer, err)
	}
	go func() { _ = cmd.Wait() }() // reaped when `cluster.sh down` stops it
	if err := os.WriteFile(filepath.Join(c.dir(), "pids", APIServer+".pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		body, err := c.Client.Discovery().RESTClient().Get().AbsPath("/readyz").Timeout(2 * time.Second).DoRaw(context.Background())
		if err == nil && string(body) == "ok" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready a minute after the restart: %v", APIServer, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func procStrings(pid int, file string) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), nil
}

// waitGone waits until a killed process has exited (a zombie counts: it
// holds no sockets).
func waitGone(t testing.TB, pid int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		// The state follows the command name in parentheses.
		if err != nil || bytes.Contains(b[bytes.LastIndexByte(b, ')'):], []byte(") Z")) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs 30s after SIGKILL", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var etcdServers = regexp.MustCompile(`--etcd-servers=(\S+)`)

// Etcd is a cluster's etcd, spoken to through its JSON gateway (the gRPC
// API as HTTP on the client port; bytes travel as base64, as encoding/json
// writes []byte), so tests need no etcd client: to change
// what the apiserver stores behind its back, or to compact its history.
type Etcd struct {
	t   testing.TB
	url string
}

// Etcd returns the cluster's etcd.
func (c Cluster) Etcd(t testing.TB) *Etcd {
	t.Helper()
	c.mustBePrivate(t)
	b, err := os.ReadFile(filepath.Join(c.dir(), "kwok.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m := etcdServers.FindSubmatch(b)
	if m == nil {
		t.Fatal("no --etcd-servers in the cluster's kwok.yaml")
	}
	return &Etcd{t: t, url: strings.Split(string(m[1]), ",")[0]}
}

// EtcdKV is a key and its value as etcd holds them.
type EtcdKV struct {
	Key, Value  []byte
	ModRevision int64
}

type etcdHeader struct {
	Revision int64 `json:"revision,string"`
}

func (e *Etcd) call(path string, req, resp any) {
	e.t.Helper()
	body, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		e.t.Fatalf("etcd %s: %v", path, err)
	}
	defer res.Body.Close()
	var raw bytes.Buffer
	_, _ = raw.ReadFrom(res.Body)
	if res.StatusCode != http.StatusOK {
		e.t.Fatalf("etcd %s: %s: %s", path, res.Status, raw.String())
	}
	if err := json.Unmarshal(raw.Bytes(), resp); err != nil {
		e.t.Fatalf("etcd %s: %v: %s", path, err, raw.String())
	}
}

// Get returns a key, or nil when etcd has none.
func (e *Etcd) Get(key string) *EtcdKV {
	e.t.Helper()
	var resp struct {
		Kvs []struct {
			Key         []byte `json:"key"`
			Value       []byte `json:"value"`
			ModRevision int64  `json:"mod_revision,string"`
		} `json:"kvs"`
	}
	e.call("/v3/kv/range", map[string]any{"key": []byte(key)}, &resp)
	if len(resp.Kvs) == 0 {
		return nil
	}
	kv := resp.Kvs[0]
	return &EtcdKV{Key: kv.Key, Value: kv.Value, ModRevision: kv.ModRevision}
}

// Put writes a key and returns the revision it made.
func (e *Etcd) Put(key string, value []byte) int64 {
	e.t.Helper()
	var resp struct{ Header etcdHeader }
	e.call("/v3/kv/put", map[string]any{"key": []byte(key), "value": value}, &resp)
	return resp.Header.Revision
}

// Delete deletes a key and returns how many keys went (0 or 1).
func (e *Etcd) Delete(key string) int {
	e.t.Helper()
	var resp struct {
		Deleted int `json:"deleted,string"`
	}
	e.call("/v3/kv/deleterange", map[string]any{"key": []byte(key)}, &resp)
	return resp.Deleted
}

// Revision is etcd's current revision.
func (e *Etcd) Revision() int64 {
	e.t.Helper()
	var resp struct{ Header etcdHeader }
	e.call("/v3/kv/range", map[string]any{"key": []byte{0}, "count_only": true}, &resp)
	return resp.Header.Revision
}

// Compact discards every revision before rev (physically, before it
// returns): a watch or list from an older resourceVersion then gets 410
// Gone from etcd.
func (e *Etcd) Compact(rev int64) {
	e.t.Helper()
	var resp struct{ Header etcdHeader }
	e.call("/v3/kv/compaction", map[string]any{"revision": strconv.FormatInt(rev, 10), "physical": true}, &resp)
}

// DescribeMetricsServer says whether the cluster's metrics-server process
// runs and how its log ends, for a test that waited for metrics in vain.
func (c Cluster) DescribeMetricsServer() string {
	const component = "metrics-server"
	var b strings.Builder
	raw, err := os.ReadFile(filepath.Join(c.dir(), "pids", component+".pid"))
	pid, perr := strconv.Atoi(strings.TrimSpace(string(raw)))
	switch {
	case err != nil || perr != nil:
		fmt.Fprintf(&b, "%s of %s: no pid file (%v)", component, c.Context, err)
	case syscall.Kill(pid, 0) != nil:
		fmt.Fprintf(&b, "%s of %s (pid %d) has exited", component, c.Context, pid)
	default:
		fmt.Fprintf(&b, "%s of %s (pid %d) runs", component, c.Context, pid)
	}
	logText, err := os.ReadFile(filepath.Join(c.dir(), "logs", component+".log"))
	if err != nil {
		return b.String()
	}
	// The CA-bundle complaint repeats every few seconds on kwok's apiserver
	// (it has no request-header CA) and says nothing.
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(logText)), "\n") {
		if !strings.Contains(l, "missing content for CA bundle") {
			lines = append(lines, l)
		}
	}
	b.WriteString("; its log ends:\n" + strings.Join(lines[max(0, len(lines)-8):], "\n"))
	return b.String()
}
