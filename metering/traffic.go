package metering

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/k8s"
)

// Traffic is the traffic source: it reads every pod's network byte counters
// from each node's kubelet (the cAdvisor endpoint, through the apiserver's
// node proxy) and turns them into the bytes each namespace received and sent
// since the previous read.
//
// Counters live in memory: the first read of a cluster after a start (or a
// leader change) sets the baseline, so the interval before it is not
// counted. A pod seen for the first time later counts its whole counter when
// it started after the previous read (its counter began at zero in between),
// and otherwise sets its baseline too. A counter that went down was reset (a
// restarted pod sandbox) and counts from zero. A node that could not be read
// keeps its pods' last counters, so its next read counts the whole gap.
type Traffic struct {
	// Path on the kubelet; "{node}" becomes the node's name. Default
	// /metrics/cadvisor.
	Path string
	// Parallel is how many nodes are read at once (default 8).
	Parallel int
	// Timeout bounds the read of one node (default 10s).
	Timeout time.Duration

	mu    sync.Mutex
	state map[string]*clusterTraffic // by cluster name
}

// clusterTraffic is what the last reads of one cluster saw.
type clusterTraffic struct {
	last     time.Time // the previous read that reached at least one node
	counters map[podRef]netCounters
}

type podRef struct{ namespace, name string }

type netCounters struct{ rx, tx float64 }

// NamespaceTraffic is the bytes a namespace received and sent over one
// interval.
type NamespaceTraffic struct{ In, Out int64 }

// TrafficReport says what one read of a cluster did.
type TrafficReport struct {
	// Namespaces holds each namespace's bytes since the previous read.
	Namespaces map[string]NamespaceTraffic
	// Nodes is how many nodes were read; Failed names those that were not.
	Nodes  int
	Failed []string
	// Baseline is true for the first read of the cluster (nothing counted).
	Baseline bool
}

// Read reads every Ready node of c and returns each namespace's traffic
// since the previous Read of c.
func (t *Traffic) Read(ctx context.Context, c *k8s.Cluster) (TrafficReport, error) {
	// Pods that start after this are new to the next read.
	started := time.Now()
	ctx = caller.With(ctx, system)
	nodeItems, err := listAll(ctx, c, k8s.GVKNode)
	if err != nil {
		return TrafficReport{}, err
	}
	podItems, err := listAll(ctx, c, k8s.GVKPod)
	if err != nil {
		return TrafficReport{}, err
	}
	// Pods whose traffic is their own: not host-network pods (cAdvisor gives
	// them the node's interfaces), by name, with their start time.
	pods := make(map[podRef]*corev1.Pod, len(podItems))
	for _, it := range podItems {
		p := it.Obj.(*corev1.Pod)
		if !p.Spec.HostNetwork {
			pods[podRef{p.Namespace, p.Name}] = p
		}
	}
	var nodes []string
	for _, it := range nodeItems {
		if n := it.Obj.(*corev1.Node); k8s.NodeStatus(n) == "Ready" {
			nodes = append(nodes, n.Name)
		}
	}

	read, failed, firstErr := t.readNodes(ctx, c, nodes)
	rep := TrafficReport{Namespaces: map[string]NamespaceTraffic{}, Nodes: len(nodes) - len(failed), Failed: failed}
	if len(nodes) > 0 && len(failed) == len(nodes) {
		return rep, fmt.Errorf("traffic: no node of %s could be read: %w", c.Name, firstErr)
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state == nil {
		t.state = map[string]*clusterTraffic{}
	}
	st := t.state[c.Name]
	rep.Baseline = st == nil
	if st == nil {
		st = &clusterTraffic{counters: map[podRef]netCounters{}}
		t.state[c.Name] = st
	}
	for ref, cur := range read {
		p, ok := pods[ref]
		if !ok {
			continue // gone from the cache, or host network
		}
		prev, seen := st.counters[ref]
		st.counters[ref] = cur
		if rep.Baseline {
			continue
		}
		if !seen {
			// StartTime has whole seconds: a pod that started in the second
			// of the previous read, but after it, must count from zero.
			if p.Status.StartTime == nil || p.Status.StartTime.Time.Before(st.last.Truncate(time.Second)) {
				continue // was running before the previous read: a baseline
			}
			prev = netCounters{}
		}
		d := NamespaceTraffic{In: delta(prev.rx, cur.rx), Out: delta(prev.tx, cur.tx)}
		if d.In == 0 && d.Out == 0 {
			continue
		}
		ns := rep.Namespaces[ref.namespace]
		ns.In += d.In
		ns.Out += d.Out
		rep.Namespaces[ref.namespace] = ns
	}
	// Forget pods that are gone; keep those on nodes that were not read.
	for ref := range st.counters {
		if _, ok := pods[ref]; !ok {
			delete(st.counters, ref)
		}
	}
	st.last = started
	return rep, nil
}

// delta is how much a counter grew; a counter that went down was reset and
// counts from zero.
func delta(prev, cur float64) int64 {
	if cur < prev {
		return int64(cur)
	}
	return int64(cur) - int64(prev)
}

// readNodes reads the counters of every node, Parallel at a time.
func (t *Traffic) readNodes(ctx context.Context, c *k8s.Cluster, nodes []string) (_ map[podRef]netCounters, failed []string, firstErr error) {
	parallel, timeout, path := t.Parallel, t.Timeout, t.Path
	if parallel <= 0 {
		parallel = 8
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	if path == "" {
		path = "/metrics/cadvisor"
	}
	var (
		mu    sync.Mutex
		all   = map[podRef]netCounters{}
		wg    sync.WaitGroup
		slots = make(chan struct{}, parallel)
	)
	for _, node := range nodes {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			nctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			counters, err := readNode(nctx, c, node, strings.ReplaceAll(path, "{node}", node))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				failed = append(failed, node)
				return
			}
			for ref, n := range counters {
				all[ref] = n
			}
		}()
	}
	wg.Wait()
	return all, failed, firstErr
}

func readNode(ctx context.Context, c *k8s.Cluster, node, path string) (map[podRef]netCounters, error) {
	body, err := c.KubeletGet(ctx, node, path)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return parseNetCounters(body)
}

// Series names of cAdvisor's pod network counters.
const (
	rxSeries = "container_network_receive_bytes_total"
	txSeries = "container_network_transmit_bytes_total"
)

// parseNetCounters reads the Prometheus text format and returns each pod's
// received and sent bytes, summed over its interfaces but loopback. A pod and
// interface reported more than once (a runtime that labels the sandbox both
// as container "" and "POD") counts once, with the largest value. Every other
// series is skipped without being parsed.
func parseNetCounters(r io.Reader) (map[podRef]netCounters, error) {
	type key struct {
		pod   podRef
		iface string
	}
	rx, tx := map[key]float64{}, map[key]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var into map[key]float64
		switch {
		case strings.HasPrefix(line, rxSeries+"{"):
			into, line = rx, line[len(rxSeries):]
		case strings.HasPrefix(line, txSeries+"{"):
			into, line = tx, line[len(txSeries):]
		default:
			continue
		}
		labels, rest, err := parseLabels(line)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", line, err)
		}
		v, err := parseValue(rest)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", line, err)
		}
		k := key{podRef{labels["namespace"], labels["pod"]}, labels["interface"]}
		if k.pod.namespace == "" || k.pod.name == "" || k.iface == "lo" {
			continue
		}
		if v > into[k] {
			into[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	out := map[podRef]netCounters{}
	for k, v := range rx {
		n := out[k.pod]
		n.rx += v
		out[k.pod] = n
	}
	for k, v := range tx {
		n := out[k.pod]
		n.tx += v
		out[k.pod] = n
	}
	return out, nil
}

// parseLabels parses `{a="x",b="y"}` at the start of s and returns the rest.
func parseLabels(s string) (map[string]string, string, error) {
	if !strings.HasPrefix(s, "{") {
		return nil, "", errors.New("labels expected")
	}
	s = s[1:]
	labels := map[string]string{}
	for {
		s = strings.TrimLeft(s, " ,")
		if strings.HasPrefix(s, "}") {
			return labels, s[1:], nil
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || len(s) < eq+2 || s[eq+1] != '"' {
			return nil, "", errors.New("malformed label")
		}
		name := strings.TrimSpace(s[:eq])
		s = s[eq+2:]
		var b strings.Builder
		closed := false
		for i := 0; i < len(s); i++ {
			switch ch := s[i]; {
			case ch == '\\' && i+1 < len(s):
				i++
				switch s[i] {
				case 'n':
					b.WriteByte('\n')
				default:
					b.WriteByte(s[i])
				}
			case ch == '"':
				labels[name], s, closed = b.String(), s[i+1:], true
			default:
				b.WriteByte(ch)
			}
			if closed {
				break
			}
		}
		if !closed {
			return nil, "", errors.New("unterminated label value")
		}
	}
}

// parseValue reads the sample value after the labels (a timestamp may
// follow it).
func parseValue(s string) (float64, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, errors.New("value expected")
	}
	return strconv.ParseFloat(f[0], 64)
}
