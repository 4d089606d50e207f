package api_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/clustergraph/clustergraph/internal/testenv"
)

type logChunk struct {
	Pod, Container, Line string
	Timestamp            *time.Time
}

func (st *stream) nextLog() (logChunk, bool) {
	st.t.Helper()
	var out map[string]logChunk
	if !st.next(&out) {
		return logChunk{}, false
	}
	for _, c := range out {
		return c, true
	}
	return logChunk{}, false
}

// appendLog appends a CRI-format line to the cluster's fake container log.
func appendLog(t *testing.T, c testenv.Cluster, text string) {
	t.Helper()
	f, err := os.OpenFile(c.LogFile(), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "%s stdout F %s\n", time.Now().UTC().Format(time.RFC3339Nano), text)
}

// TestPodLogs follows one container's log: the existing lines, a line
// appended while following, timestamps, and the end when the pod goes.
func TestPodLogs(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	ns := "logs-test"
	makeNamespace(t, c, ns)
	makePod(t, c, ns, "talker")
	s := startServer(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true})
	s.waitRunning(t, ns, 1)
	st := subscribeWS(t, s, "", `subscription { podLogs(cluster: "`+c.Context+`", namespace: "logs-test", pod: "talker", timestamps: true) {
		pod container line timestamp } }`, nil)
	first, ok := st.nextLog()
	if !ok || first.Pod != "talker" || first.Container != "app" || !strings.Contains(first.Line, "testbed log line 1") || first.Timestamp == nil {
		t.Fatalf("first chunk %+v", first)
	}
	marker := fmt.Sprintf("followed line %d", time.Now().UnixNano())
	appendLog(t, c, marker)
	for {
		l, ok := st.nextLog()
		if !ok {
			t.Fatal("the log ended before the appended line")
		}
		if strings.HasPrefix(l.Line, "20") {
			t.Errorf("timestamp left in the line: %q", l.Line)
		}
		if l.Line == marker {
			break
		}
	}
	deletePod(t, c, ns, "talker")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, ok := st.nextLog(); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stream outlived its pod")
		}
	}

	bad := subscribeWS(t, s, "", `subscription { podLogs(cluster: "`+c.Context+`", namespace: "shop", pod: "no-such-pod") { line } }`, nil)
	if code := bad.errorCode(); code != "NOT_FOUND" {
		t.Errorf("logs of a missing pod: code %q, want NOT_FOUND", code)
	}
}

// TestSelectorLogs follows every pod a label selector matches, including a
// pod that appears while following, each line tagged with its pod.
func TestSelectorLogs(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	ns := "logs-many"
	makeNamespace(t, c, ns)
	makePod(t, c, ns, "one")
	makePod(t, c, ns, "two")
	s := startServer(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true})
	s.waitRunning(t, ns, 2)
	st := subscribeWS(t, s, "", `subscription { logs(cluster: "`+c.Context+`", namespace: "logs-many", labelSelector: "app=watch", tailLines: 2) { pod container line } }`, nil)
	seen := map[string]int{}
	for seen["one"] < 2 || seen["two"] < 2 {
		l, ok := st.nextLog()
		if !ok {
			t.Fatalf("stream ended; seen %v", seen)
		}
		seen[l.Pod]++
	}
	makePod(t, c, ns, "three")
	for seen["three"] == 0 {
		l, ok := st.nextLog()
		if !ok {
			t.Fatalf("stream ended before the new pod's log; seen %v", seen)
		}
		seen[l.Pod]++
	}
}
