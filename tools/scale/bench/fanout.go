package main

// The subscription fan-out scenario of issue 7: many subscribers of
// clustergraph's pod watch while a writer patches pods at a steady rate,
// next to the same number of raw client-go watches on the apiserver, in
// the same run and against the same populated cluster.
//
// What a subscriber is: a console's pod list of one namespace. Each
// subscription (and each raw watch) watches the pods of one namespace,
// the subscribers spread round-robin over the cluster's namespaces, and
// the writes spread the same way, so every write reaches subs/namespaces
// subscribers. A console holds one websocket per browser tab carrying
// several subscriptions; the subscriptions are spread in contiguous
// blocks over -sockets websockets, and the raw watches over as many
// HTTP/2 connections (one client-go transport each).
//
// How latency is measured: each write is a merge patch of two
// annotations, a sequence number and the time the patch was sent (Unix
// nanoseconds, this process's clock, which also stamps the receipt). A
// subscriber's first sight of a sequence number is one delivery; its
// latency is the receipt time minus the sent time. A delivery that never
// came (within the drain after the last write) is missing.

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const (
	seqAnnotation  = "bench.clustergraph.io/seq"
	sentAnnotation = "bench.clustergraph.io/sent"
	// drainTimeout bounds the wait for deliveries after the last write;
	// what has not arrived by then counts as missing.
	drainTimeout = 15 * time.Second
	// writers are the goroutines sharing the writes, so that PATCHes
	// taking up to a second (a loaded apiserver) do not lower the rate.
	writers = 100
	// maxPerSocket is clustergraph's default limit of subscriptions a
	// websocket runs at once (api.Limits.MaxSubscriptions; no flag).
	maxPerSocket = 100
)

// fanoutQuery is the subscription of a console's pod list of one
// namespace: its columns, and the annotations that carry the timestamp.
const fanoutQuery = `subscription($ns: String!) { watch(kind: "Pod", namespace: $ns) {
	type cursor object { metadata { name namespace resourceVersion annotations }
	... on Pod { status ready restarts podIP nodeName } } } }`

// fanoutOpts are the scenario's flags.
type fanoutOpts struct {
	subs, sockets, rate int
	duration            time.Duration
	// settle is how long memory is left to settle before it is read.
	settle time.Duration
	// apiserverPid is the apiserver's process (0: its figures are left out).
	apiserverPid int
}

// fanout runs the scenario: writes with nobody subscribed (what the
// writes cost alone); the memory of idle subscriptions and idle raw
// watches; then the writes with opts.subs clustergraph subscriptions,
// and with as many raw client-go watches.
func fanout(cfg *rest.Config, cg *proc, o fanoutOpts) {
	w := newWriter(cfg)
	k := len(w.namespaces)
	nsOf := make([]int, o.subs) // each subscriber's namespace (index)
	subsIn := make([]int, k)    // subscribers per namespace
	for i := range nsOf {
		nsOf[i] = i % k
		subsIn[i%k]++
	}
	perSocket := (o.subs + o.sockets - 1) / o.sockets
	if perSocket > maxPerSocket {
		fatalf("fan-out: %d subscriptions a websocket; clustergraph allows %d: raise -sockets", perSocket, maxPerSocket)
	}
	sockets := (o.subs + perSocket - 1) / perSocket
	scenario := fmt.Sprintf("fan-out, %d subscribers", o.subs)
	report.Notes = append(report.Notes, fmt.Sprintf("%s: each subscription watches one namespace's pods (a console's pod list), "+
		"round-robin over the %d namespaces, %d per websocket over %d websockets; the raw client-go watches (typed Pods(ns).Watch, JSON, "+
		"in the driver's process) are spread the same way over %d HTTP/2 connections. A writer patches an annotation at %d pods/s for %s, "+
		"round-robin over the namespaces, so each write reaches the %d or so subscribers of its namespace; latency is the receipt minus "+
		"the patch's start; missing: deliveries not received %[9]s past the last write (lost to a resync, or later than that). Raw watches the "+
		"apiserver ends are reopened from their last resourceVersion, as a reflector would (reopened). *_cpu_s: CPU seconds from the first "+
		"write to the last delivery (or %[9]s past the last write). "+
		"server_rss_bytes_per_sub: growth of clustergraph's (for the raw watches: the apiserver's) resident memory per idle subscription "+
		"(watch): subscriptions and watches are opened side by side and the resident memory of both servers read from /proc %s after "+
		"they synced and %s before they opened (after the baseline writes), past Go's two-minute forced collection; RSS includes the collector's headroom (GOGC=100: up to twice the live heap). client_heap_bytes_per_sub: "+
		"the driver's Go heap and stacks per subscription (watch).",
		scenario, k, perSocket, sockets, sockets, o.rate, o.duration, o.subs/k, drainTimeout, o.settle, o.settle))

	// What the writes cost with nobody subscribed: clustergraph's
	// informer and the apiserver still see every one.
	c0 := cpuNow(cg, o.apiserverPid)
	took, failed := w.run(o.rate, o.duration, nil)
	c1 := cpuNow(cg, o.apiserverPid)
	add(scenario, "no subscribers (baseline)", c1.since(c0, writeFigures(took, failed)))

	// Idle memory: clustergraph's subscriptions and the raw watches open
	// side by side (neither adds to the other's server), read once both
	// servers have collected what opening them left behind.
	log.Printf("fan-out: letting memory settle for %s, twice", o.settle)
	time.Sleep(o.settle)
	cgRSS0, _ := cg.memory()
	apiRSS0, _ := memoryOf(o.apiserverPid)
	heap0 := goMemory()
	rec := newRecorder(w.seq, w.count(o.rate, o.duration), o.subs)
	socks := subscribe(cg.addr, w.namespaces, nsOf, perSocket, rec)
	rec.waitSynced(o.subs, "clustergraph subscriptions")
	heap1 := goMemory()
	idle := newRecorder(w.seq, 0, o.subs)
	watches := rawWatches(cfg, w, nsOf, perSocket, sockets, idle)
	idle.waitSynced(o.subs, "raw watches' initial events")
	heap2 := goMemory()
	time.Sleep(o.settle)
	cgRSS1, _ := cg.memory()
	apiRSS1, _ := memoryOf(o.apiserverPid)
	watches.close()

	// clustergraph: o.subs subscriptions over the websockets.
	m := rec.measure(w, o, subsIn, cg)
	socks.close()
	rec.latencies(m)
	m["server_rss_bytes_per_sub"] = (cgRSS1 - cgRSS0) / float64(o.subs)
	m["client_heap_bytes_per_sub"] = (heap1 - heap0) / float64(o.subs)
	m["resyncs"] = float64(rec.resyncs.Load())
	m["errors"] = float64(rec.errors.Load())
	add(scenario, "clustergraph", m)

	// The peer: as many raw client-go watches on the apiserver.
	rec = newRecorder(w.seq, w.count(o.rate, o.duration), o.subs)
	watches = rawWatches(cfg, w, nsOf, perSocket, sockets, rec)
	rec.waitSynced(o.subs, "raw watches' initial events")
	m = rec.measure(w, o, subsIn, cg)
	watches.close()
	rec.latencies(m)
	if o.apiserverPid > 0 {
		m["server_rss_bytes_per_sub"] = (apiRSS1 - apiRSS0) / float64(o.subs)
	}
	m["client_heap_bytes_per_sub"] = (heap2 - heap1) / float64(o.subs)
	m["errors"] = float64(rec.errors.Load())
	// Watches the apiserver ended, reopened as a reflector would.
	m["reopened"] = float64(rec.reopened.Load())
	add(scenario, "raw client-go watches", m)
}

// writer patches pods round-robin over the namespaces (and over the pods
// of each); the sequence numbers and the position in the round continue
// from one run to the next.
type writer struct {
	cl         kubernetes.Interface
	namespaces []string
	pods       [][]string // per namespace, sorted
	seq        int64      // the last sequence number written
	next       int        // the position in the round of the next write
}

func newWriter(cfg *rest.Config) *writer {
	cl := kubernetes.NewForConfigOrDie(cfg)
	l, err := cl.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		fatal(err)
	}
	byNS := map[string][]string{}
	for _, p := range l.Items {
		byNS[p.Namespace] = append(byNS[p.Namespace], p.Name)
	}
	w := &writer{cl: cl}
	for ns := range byNS {
		w.namespaces = append(w.namespaces, ns)
	}
	if len(w.namespaces) == 0 {
		fatal("fan-out: no pods to write")
	}
	slices.Sort(w.namespaces)
	for _, ns := range w.namespaces {
		slices.Sort(byNS[ns])
		w.pods = append(w.pods, byNS[ns])
	}
	return w
}

// target is the namespace (index) and pod of write k of the round.
func (w *writer) target(k int) (int, string) {
	ns := k % len(w.namespaces)
	p := w.pods[ns]
	return ns, p[(k/len(w.namespaces))%len(p)]
}

// count is the number of writes of a run at rate for d.
func (w *writer) count(rate int, d time.Duration) int64 { return int64(float64(rate) * d.Seconds()) }

// run writes rate patches a second for d, each due at its own time,
// counting the writes to each namespace in perNS (when not nil). It
// returns how long they took and, for each write, whether it failed: a
// loaded apiserver may time a PATCH out (which may or may not have been
// applied), and the run goes on.
func (w *writer) run(rate int, d time.Duration, perNS []int) (time.Duration, []bool) {
	n := int(w.count(rate, d))
	failed := make([]bool, n)
	var failures atomic.Int64
	interval := time.Second / time.Duration(rate)
	base, first := w.seq, w.next
	var taken atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(taken.Add(1) - 1)
				if i >= n {
					return
				}
				time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
				ns, pod := w.target(first + i)
				patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q,%q:%q}}}`, seqAnnotation, strconv.FormatInt(base+int64(i)+1, 10),
					sentAnnotation, strconv.FormatInt(time.Now().UnixNano(), 10))
				if _, err := w.cl.CoreV1().Pods(w.namespaces[ns]).Patch(context.Background(), pod, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
					failed[i] = true
					if failures.Add(1) <= 3 {
						log.Printf("fan-out: patching %s/%s: %v", w.namespaces[ns], pod, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	for i := range n {
		if perNS != nil && !failed[i] {
			ns, _ := w.target(first + i)
			perNS[ns]++
		}
	}
	w.seq += int64(n)
	w.next += n
	return took, failed
}

// writeFigures are the writer's figures of a run.
func writeFigures(took time.Duration, failed []bool) map[string]float64 {
	errs := 0
	for _, f := range failed {
		if f {
			errs++
		}
	}
	return map[string]float64{"writes": float64(len(failed) - errs), "write_errors": float64(errs), "writes_per_s": float64(len(failed)) / took.Seconds()}
}

// recorder collects the deliveries of one run. Each subscriber's record
// is written by the one goroutine that reads its socket or watch, and
// read once those goroutines have ended (or, for the counters, at any
// time).
type recorder struct {
	base, n int64 // the run's writes: sequence numbers base+1 … base+n
	subs    []subRecord

	received, synced, resyncs, errors, reopened atomic.Int64
	// failed are the writes that failed (set once they are done): what
	// they delivered if the apiserver applied them anyway is not counted.
	failed []bool
	// unsynced counts down, per subscriber, what it still has to receive
	// of the initial state (raw watches: ADDED events; clustergraph: its
	// SYNCED marker), to say who is missing when the wait times out.
	unsynced []atomic.Int64
}

type subRecord struct {
	seen    []uint64 // a bit per sequence number of the run
	samples []sample
}

// sample is one delivery: the write (its index in the run) and its latency.
type sample struct {
	write int32
	lat   time.Duration
}

func newRecorder(base, n int64, subs int) *recorder {
	r := &recorder{base: base, n: n, subs: make([]subRecord, subs), unsynced: make([]atomic.Int64, subs)}
	for i := range r.subs {
		r.subs[i].seen = make([]uint64, (n+63)/64)
	}
	return r
}

// saw records what subscriber sub received at now: a delivery if it
// carries a sequence number of the run it had not seen. Anything else
// (the initial state, a status written by kwok, a resync's replay of what
// it already has) is not one.
func (r *recorder) saw(sub int, annotations map[string]string, now time.Time) {
	seq, err := strconv.ParseInt(annotations[seqAnnotation], 10, 64)
	if err != nil || seq <= r.base || seq > r.base+r.n {
		return
	}
	i := seq - r.base - 1
	s := &r.subs[sub]
	if s.seen[i/64]&(1<<(i%64)) != 0 {
		return
	}
	s.seen[i/64] |= 1 << (i % 64)
	sent, _ := strconv.ParseInt(annotations[sentAnnotation], 10, 64)
	s.samples = append(s.samples, sample{int32(i), now.Sub(time.Unix(0, sent))})
	r.received.Add(1)
}

// initialized counts one initial event of subscriber sub and reports
// whether it completed the initial state.
func (r *recorder) initialized(sub int) {
	if r.unsynced[sub].Add(-1) == 0 {
		r.synced.Add(1)
	}
}

func (r *recorder) waitSynced(want int, what string) {
	deadline := time.Now().Add(5 * time.Minute)
	for r.synced.Load() < int64(want) {
		if time.Now().After(deadline) {
			var behind []string
			for i := range r.unsynced {
				if left := r.unsynced[i].Load(); left > 0 && len(behind) < 40 {
					behind = append(behind, fmt.Sprintf("%d:%d", i, left))
				}
			}
			fatalf("fan-out: %d of %d %s after 5 minutes (%d errors, %d reopened); subscriber:left %v", r.synced.Load(), want, what,
				r.errors.Load(), r.reopened.Load(), behind)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// measure writes at the scenario's rate, waits for the deliveries (or
// drainTimeout past the last write) and returns the CPU used meanwhile
// and the number of deliveries expected. The latencies are added once
// the readers have stopped (latencies).
func (r *recorder) measure(w *writer, o fanoutOpts, subsIn []int, cg *proc) map[string]float64 {
	perNS := make([]int, len(w.namespaces))
	c0 := cpuNow(cg, o.apiserverPid)
	took, failed := w.run(o.rate, o.duration, perNS)
	r.failed = failed
	var expected int64
	for ns, writes := range perNS {
		expected += int64(writes * subsIn[ns])
	}
	deadline := time.Now().Add(drainTimeout)
	for r.received.Load() < expected && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	c1 := cpuNow(cg, o.apiserverPid)
	m := c1.since(c0, writeFigures(took, failed))
	m["deliveries_expected"] = float64(expected)
	return m
}

// loadAverage is the machine's one-minute load average: other work on
// the 2 cores stretches the latencies, and this says how much there was.
func loadAverage() float64 {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// latencies adds the deliveries, the missing ones and the latency
// quantiles to m (which holds deliveries_expected); the readers must have
// stopped.
func (r *recorder) latencies(m map[string]float64) {
	var all []time.Duration
	for _, s := range r.subs {
		for _, d := range s.samples {
			if r.failed == nil || !r.failed[d.write] {
				all = append(all, d.lat)
			}
		}
	}
	m["deliveries"] = float64(len(all))
	m["missing"] = m["deliveries_expected"] - float64(len(all))
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	for name, q := range map[string]float64{"p50_ms": 0.50, "p99_ms": 0.99, "max_ms": 1} {
		m[name] = float64(all[int(q*float64(len(all)-1))]) / 1e6
	}
}

// cpu is what the processes of the scenario have used.
type cpu struct {
	clustergraph, apiserver, driver time.Duration
	at                              time.Time
}

func cpuNow(cg *proc, apiserverPid int) cpu {
	var u syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &u)
	c := cpu{clustergraph: cpuOf(cg.cmd.Process.Pid), driver: time.Duration(u.Utime.Nano() + u.Stime.Nano()), at: time.Now()}
	if apiserverPid > 0 {
		c.apiserver = cpuOf(apiserverPid)
	}
	return c
}

// since adds the CPU seconds used since c0 to m.
func (c cpu) since(c0 cpu, m map[string]float64) map[string]float64 {
	m["window_s"] = c.at.Sub(c0.at).Seconds()
	m["loadavg_1m"] = loadAverage()
	m["clustergraph_cpu_s"] = (c.clustergraph - c0.clustergraph).Seconds()
	m["driver_cpu_s"] = (c.driver - c0.driver).Seconds()
	if c.apiserver > 0 {
		m["apiserver_cpu_s"] = (c.apiserver - c0.apiserver).Seconds()
	}
	return m
}

// cpuOf is the user and system CPU time process pid has used, from
// /proc/PID/stat (fields 14 and 15, in clock ticks of 1/100 s).
func cpuOf(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		fatal(err)
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// goMemory is this process's live heap and goroutine stacks after a
// full collection.
func goMemory() float64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc + m.StackInuse)
}

// apiserverPid reads the apiserver's process id from the pid file kwokctl
// keeps beside the cluster's kubeconfig (0 when there is none).
func apiserverPid(kubeconfig string) int {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(kubeconfig), "pids", "kube-apiserver.pid"))
	if err != nil {
		log.Printf("fan-out: no apiserver pid file (%v): its CPU and memory are left out", err)
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// closer stops what a run opened and waits for its readers to end.
type closer struct {
	stop func()
	wg   sync.WaitGroup
}

func (c *closer) close() { c.stop(); c.wg.Wait() }

// wsMessage is the part of a graphql-transport-ws message the
// subscribers read.
type wsMessage struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Payload struct {
		Data struct {
			Watch struct {
				Type   string `json:"type"`
				Object *struct {
					Metadata struct {
						Annotations map[string]string `json:"annotations"`
					} `json:"metadata"`
				} `json:"object"`
			} `json:"watch"`
		} `json:"data"`
	} `json:"payload"`
}

// subscribe opens the clustergraph subscriptions, perSocket on each
// websocket, subscriber i watching namespaces[nsOf[i]].
func subscribe(addr string, namespaces []string, nsOf []int, perSocket int, r *recorder) *closer {
	ctx, cancel := context.WithCancel(context.Background())
	c := &closer{stop: cancel}
	var opening sync.WaitGroup
	for first := 0; first < len(nsOf); first += perSocket {
		opening.Add(1)
		go func() {
			defer opening.Done()
			dial, dialed := context.WithTimeout(ctx, 30*time.Second)
			defer dialed()
			conn, _, err := websocket.Dial(dial, "ws://"+addr+"/query", &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
			if err != nil {
				fatalf("fan-out: websocket: %v", err)
			}
			conn.SetReadLimit(1 << 20)
			send(ctx, conn, map[string]any{"type": "connection_init", "payload": map[string]any{}})
			if _, b, err := conn.Read(dial); err != nil || !strings.Contains(string(b), `"connection_ack"`) {
				fatalf("fan-out: connection_init: %s %v", b, err)
			}
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				defer conn.CloseNow()
				readSocket(ctx, conn, r)
			}()
			for i := first; i < min(first+perSocket, len(nsOf)); i++ {
				r.unsynced[i].Store(1)
				send(ctx, conn, map[string]any{"id": "s" + strconv.Itoa(i), "type": "subscribe",
					"payload": map[string]any{"query": fanoutQuery, "variables": map[string]any{"ns": namespaces[nsOf[i]]}}})
			}
		}()
	}
	opening.Wait()
	return c
}

func send(ctx context.Context, c *websocket.Conn, m any) {
	b, _ := json.Marshal(m)
	if err := c.Write(ctx, websocket.MessageText, b); err != nil && ctx.Err() == nil {
		fatalf("fan-out: websocket write: %v", err)
	}
}

// readSocket hands every watch event of a socket to r until ctx ends.
func readSocket(ctx context.Context, conn *websocket.Conn, r *recorder) {
	for {
		_, b, err := conn.Read(ctx)
		now := time.Now()
		if err != nil {
			if ctx.Err() == nil {
				r.errors.Add(1)
				log.Printf("fan-out: websocket read: %v", err)
			}
			return
		}
		// An error's payload is a list, which fails the decoding of the
		// payload but still sets the type.
		var m wsMessage
		err = json.Unmarshal(b, &m)
		switch {
		case m.Type == "ping":
			send(ctx, conn, map[string]string{"type": "pong"})
			continue
		case m.Type == "error", m.Type == "complete", err != nil:
			if r.errors.Add(1) <= 3 {
				log.Printf("fan-out: %.300s", b)
			}
			continue
		case m.Type != "next":
			continue
		}
		sub, _ := strconv.Atoi(strings.TrimPrefix(m.ID, "s"))
		switch ev := m.Payload.Data.Watch; ev.Type {
		case "SYNCED":
			r.initialized(sub)
		case "RESYNC":
			r.resyncs.Add(1)
		default:
			if ev.Object != nil {
				r.saw(sub, ev.Object.Metadata.Annotations, now)
			}
		}
	}
}

// rawWatches opens a client-go watch of namespaces[nsOf[i]]'s pods for
// each subscriber, perSocket on each of conns transports (client-go
// shares a transport among clients of the same settings; a Dial of its
// own makes each client's transport, and HTTP/2 connection, its own).
// A watch counts as synced once it has sent its namespace's pods as
// ADDED, as clustergraph's SYNCED follows the initial state.
func rawWatches(cfg *rest.Config, w *writer, nsOf []int, perSocket, conns int, r *recorder) *closer {
	clients := make([]kubernetes.Interface, conns)
	for i := range clients {
		c := rest.CopyConfig(cfg)
		c.Dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		clients[i] = kubernetes.NewForConfigOrDie(c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &closer{stop: cancel}
	var opening sync.WaitGroup
	for first := 0; first < len(nsOf); first += perSocket {
		opening.Add(1)
		go func() {
			defer opening.Done()
			cl := clients[first/perSocket]
			// One at a time on each connection, as the subscriptions are
			// sent one after the other on a socket.
			for i := first; i < min(first+perSocket, len(nsOf)); i++ {
				ns := w.namespaces[nsOf[i]]
				rw := &rawWatch{cl: cl, ns: ns, sub: i, r: r, initial: len(w.pods[nsOf[i]])}
				r.unsynced[i].Store(int64(rw.initial))
				wi := rw.open(ctx)
				c.wg.Add(1)
				go func() {
					defer c.wg.Done()
					rw.read(ctx, wi)
				}()
			}
		}()
	}
	opening.Wait()
	return c
}

// rawWatch is one raw watch, reopened as a client-go reflector would when
// the apiserver ends it: from the last resourceVersion seen, or from the
// current state when that is gone (its ADDED events then deliver only
// what the subscriber has not seen).
type rawWatch struct {
	cl  kubernetes.Interface
	ns  string
	sub int
	r   *recorder
	rv  string // the last resourceVersion seen; empty: start with the current state
	// initial is the number of pods of the initial state.
	initial int
}

// open starts the watch, retrying every second until it starts or ctx
// ends (then it returns nil).
func (rw *rawWatch) open(ctx context.Context) watch.Interface {
	for {
		wi, err := rw.cl.CoreV1().Pods(rw.ns).Watch(ctx, metav1.ListOptions{ResourceVersion: rw.rv})
		if err == nil || ctx.Err() != nil {
			return wi
		}
		if rw.r.errors.Add(1) <= 3 {
			log.Printf("fan-out: raw watch %d: %v", rw.sub, err)
		}
		time.Sleep(time.Second)
	}
}

// read hands the watch's events to the recorder until ctx ends.
func (rw *rawWatch) read(ctx context.Context, wi watch.Interface) {
	r := rw.r
	for wi != nil {
		ended := false
		for !ended {
			select {
			case <-ctx.Done():
				wi.Stop()
				return
			case ev, ok := <-wi.ResultChan():
				now := time.Now()
				if !ok {
					ended = true
					break
				}
				if ev.Type == watch.Error {
					// A failed watch (e.g. "Too large resource version" when
					// the apiserver's cache lags etcd; 410 Gone when rv was
					// compacted): start again from the current state.
					if r.errors.Add(1) <= 3 {
						log.Printf("fan-out: raw watch %d: %v", rw.sub, apierrors.FromObject(ev.Object))
					}
					rw.rv = ""
					continue
				}
				p, isPod := ev.Object.(*corev1.Pod)
				if !isPod {
					continue
				}
				rw.rv = p.ResourceVersion
				if ev.Type == watch.Added && r.unsynced[rw.sub].Load() > 0 {
					r.initialized(rw.sub)
				}
				r.saw(rw.sub, p.Annotations, now)
			}
		}
		wi.Stop()
		if ctx.Err() != nil {
			return
		}
		if r.reopened.Add(1) <= 3 {
			log.Printf("fan-out: raw watch %d ended by the apiserver; reopening", rw.sub)
		}
		if r.unsynced[rw.sub].Load() > 0 {
			// It failed during its initial state: count that again.
			rw.rv = ""
			r.unsynced[rw.sub].Store(int64(rw.initial))
		}
		time.Sleep(time.Second)
		wi = rw.open(ctx)
	}
}
