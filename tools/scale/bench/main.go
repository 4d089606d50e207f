// Command bench runs the scale scenarios of issue 7 against one populated
// cluster (tools/testbed/scale.sh): clustergraph and its peer in the same
// run, so the figures are ratios that survive a noisy machine. It writes a
// JSON file and prints a markdown table.
//
//	bench -kubeconfig FILE -size M -clustergraph bin/clustergraph -peer bin/peer -out results/
//
// -scenarios picks some of first-page, whole-list, deep and fanout (cold
// start always runs: it starts the servers). The fan-out scenario
// (fanout.go) takes -subs, -sockets, -write-rate, -fanout-duration and
// -settle.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Result is one scenario's figures for clustergraph and its peer.
type Result struct {
	Scenario string             `json:"scenario"`
	Subject  string             `json:"subject"`
	Metrics  map[string]float64 `json:"metrics"`
}

// Report is the JSON file.
type Report struct {
	Date    string            `json:"date"`
	Machine map[string]string `json:"machine"`
	Size    string            `json:"size"`
	Pods    int               `json:"pods"`
	Nodes   int               `json:"nodes"`
	Results []Result          `json:"results"`
	// Notes say how scenarios were run where their name cannot.
	Notes []string `json:"notes,omitempty"`
}

var report Report

// running are the servers started, stopped on a fatal error too (a
// deferred kill does not run on os.Exit).
var running []*proc

func fatal(v ...any) {
	for _, p := range running {
		p.kill()
	}
	log.Fatal(v...)
}

func fatalf(format string, v ...any) { fatal(fmt.Sprintf(format, v...)) }

func add(scenario, subject string, m map[string]float64) {
	report.Results = append(report.Results, Result{scenario, subject, m})
	log.Printf("%-28s %-22s %v", scenario, subject, m)
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "populated cluster")
	size := flag.String("size", "S", "S, M or L")
	pods := flag.Int("pods", 0, "pods in the cluster")
	nodes := flag.Int("nodes", 0, "nodes in the cluster")
	cg := flag.String("clustergraph", "bin/clustergraph", "clustergraph binary")
	peer := flag.String("peer", "bin/peer", "peer binary (tools/scale/peer)")
	out := flag.String("out", "bench-results", "directory for the JSON results")
	duration := flag.Duration("duration", 5*time.Second, "how long each concurrency level of the first-page scenario runs")
	scenarios := flag.String("scenarios", "first-page,whole-list,deep,fanout", "scenarios to run after the cold start, comma-separated")
	var fo fanoutOpts
	flag.IntVar(&fo.subs, "subs", 1000, "fan-out: subscriptions (and raw watches)")
	flag.IntVar(&fo.sockets, "sockets", 50, "fan-out: websockets (and HTTP/2 connections) they are spread over")
	flag.IntVar(&fo.rate, "write-rate", 100, "fan-out: pod updates per second")
	flag.DurationVar(&fo.duration, "fanout-duration", 20*time.Second, "fan-out: how long each run writes")
	flag.DurationVar(&fo.settle, "settle", 140*time.Second, "fan-out: how long memory settles before it is read (past Go's two-minute forced collection)")
	flag.IntVar(&fo.apiserverPid, "apiserver-pid", 0, "fan-out: the apiserver's process id (default: read from kwokctl's pid file beside the kubeconfig)")
	flag.Parse()
	run := map[string]bool{}
	for _, s := range strings.Split(*scenarios, ",") {
		switch s = strings.TrimSpace(s); s {
		case "first-page", "whole-list", "deep", "fanout":
			run[s] = true
		case "":
		default:
			fatalf("unknown scenario %q", s)
		}
	}
	if fo.subs < 1 || fo.sockets < 1 || fo.rate < 1 {
		fatal("-subs, -sockets and -write-rate must be positive")
	}
	report = Report{Date: time.Now().UTC().Format(time.RFC3339), Size: *size, Pods: *pods, Nodes: *nodes, Machine: machine()}

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fatal(err)
	}
	cfg.QPS, cfg.Burst = 1000, 1000
	if *pods == 0 || *nodes == 0 {
		cl := kubernetes.NewForConfigOrDie(cfg)
		pl, err := cl.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			fatal(err)
		}
		nl, err := cl.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			fatal(err)
		}
		*pods, *nodes = len(pl.Items), len(nl.Items)
		report.Pods, report.Nodes = *pods, *nodes
	}

	// 1. Cold start, one process at a time so neither slows the other:
	// time to every cache synced, resident memory once synced.
	coldStart := func(p *proc, name string) {
		took := p.waitReady()
		time.Sleep(3 * time.Second) // let the heap settle after the initial lists
		rss, hwm := p.memory()
		add("cold start", name, map[string]float64{"seconds_to_synced": took.Seconds(), "rss_mib": rss / (1 << 20), "peak_rss_mib": hwm / (1 << 20), "rss_bytes_per_pod": rss / float64(max(*pods, 1))})
	}
	cgAddr := freeAddr()
	cgProc := start(*cg, []string{"--kubeconfig", *kubeconfig, "--listen", cgAddr, "--database", "none", "--insecure-disable-auth",
		"--leader-elect=false", "--in-cluster=false", "--max-page", "1000000", "--max-complexity", "100000000",
		// Every benchmark client is the one demo user.
		"--max-user-concurrency", "1000", "--log-level", "warn"}, cgAddr)
	defer cgProc.kill()
	coldStart(cgProc, "clustergraph")
	peerProc := start(*peer, []string{"--kubeconfig", *kubeconfig}, "")
	defer peerProc.kill()
	coldStart(peerProc, "bare informers (peer)")

	cgQuery := func(q string) func() error {
		return func() error { return graphql("http://"+cgAddr+"/query", q) }
	}
	// 2. First page, filtered by label, newest first, with each pod's node.
	firstPage := cgQuery(`{ pods(first: 20, filter: {labelSelector: "tier=web"}, orderBy: {field: CREATED, direction: DESC}) { totalCount nodes { name namespace status node { name } } } }`)
	jsonCfg := rest.CopyConfig(cfg)
	jsonClient := kubernetes.NewForConfigOrDie(jsonCfg)
	listPage := func() error {
		l, err := jsonClient.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{LabelSelector: "tier=web"})
		if err != nil {
			return err
		}
		slices.SortFunc(l.Items, func(a, b corev1.Pod) int { return b.CreationTimestamp.Compare(a.CreationTimestamp.Time) })
		_ = l.Items[:min(20, len(l.Items))]
		return nil
	}
	for _, clients := range []int{1, 10, 50} {
		if !run["first-page"] {
			break
		}
		add(fmt.Sprintf("first page, %d clients", clients), "clustergraph", load(clients, *duration, firstPage))
		add(fmt.Sprintf("first page, %d clients", clients), "apiserver LIST (kubectl)", load(clients, *duration, listPage))
	}

	// 3. The whole pod list with a console's columns.
	whole := cgQuery(`{ pods(first: 1000000) { totalCount nodes { name namespace status ready restarts podIP nodeName metadata { creationTimestamp } } } }`)
	rawList := func() error {
		b, err := jsonClient.CoreV1().RESTClient().Get().AbsPath("/api/v1/pods").DoRaw(context.Background())
		if err == nil && len(b) == 0 {
			err = fmt.Errorf("empty list")
		}
		return err
	}
	peerPods := func() error { return get("http://" + peerProc.addr + "/pods") }
	if run["whole-list"] {
		add("whole pod list", "clustergraph", repeat(5, whole))
		add("whole pod list", "kubectl get pods -A -o json", repeat(5, rawList))
		add("whole pod list", "encoding/json handler (peer)", repeat(5, peerPods))
	}

	// 4. The deep query: every deployment, its pods, each pod's node.
	// Page sizes as a console would ask: every deployment (the cluster has
	// pods/10), each with its 10 pods.
	deep := cgQuery(fmt.Sprintf(`{ workloads(kinds: [DEPLOYMENT], first: %d) { totalCount nodes { name namespace pods(first: 20) { nodes { name node { name } } } } } }`, *pods/10+100))
	peerDeep := func() error { return get("http://" + peerProc.addr + "/deep") }
	if run["deep"] {
		add("deep query", "clustergraph", repeat(5, deep))
		add("deep query", "single Go function (peer)", repeat(5, peerDeep))
	}

	// 5. Subscription fan-out. The bare informers are no part of it: stop
	// them so their work on every write does not load the machine.
	if run["fanout"] {
		peerProc.kill()
		if fo.apiserverPid == 0 {
			fo.apiserverPid = apiserverPid(*kubeconfig)
		}
		fanout(cfg, cgProc, fo)
	}

	if err := os.MkdirAll(*out, 0o755); err != nil {
		fatal(err)
	}
	b, _ := json.MarshalIndent(report, "", "  ")
	file := filepath.Join(*out, "scale-"+*size+".json")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		fatal(err)
	}
	fmt.Print(markdown())
	log.Printf("wrote %s", file)
}

func machine() map[string]string {
	m := map[string]string{"go": runtime.Version(), "cpus": strconv.Itoa(runtime.NumCPU())}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				m["cpu"] = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m["memory"] = strings.TrimSpace(strings.TrimPrefix(strings.SplitN(string(b), "\n", 2)[0], "MemTotal:"))
	}
	return m
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type proc struct {
	cmd     *exec.Cmd
	addr    string
	started time.Time
}

// start runs a server; with addr empty it reads the address from the
// process's first line of output.
func start(bin string, args []string, addr string) *proc {
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	var stdout io.ReadCloser
	if addr == "" {
		stdout, _ = cmd.StdoutPipe()
	}
	p := &proc{cmd: cmd, addr: addr, started: time.Now()}
	if err := cmd.Start(); err != nil {
		fatal(err)
	}
	running = append(running, p)
	if stdout != nil {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			fatalf("%s: %v", bin, err)
		}
		p.addr = strings.TrimSpace(line)
	}
	return p
}

func (p *proc) kill() { _ = p.cmd.Process.Kill(); _, _ = p.cmd.Process.Wait() }

func (p *proc) waitReady() time.Duration {
	for {
		resp, err := http.Get("http://" + p.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return time.Since(p.started)
			}
		}
		if time.Since(p.started) > 10*time.Minute {
			fatalf("%s not ready after 10 minutes", p.cmd.Path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// memory reads the process's resident and peak resident set size in bytes.
func (p *proc) memory() (rss, peak float64) { return memoryOf(p.cmd.Process.Pid) }

// memoryOf reads a process's resident and peak resident set size in
// bytes (zero for pid 0).
func memoryOf(pid int) (rss, peak float64) {
	if pid == 0 {
		return 0, 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 {
			kb, _ := strconv.ParseFloat(f[1], 64)
			switch f[0] {
			case "VmRSS:":
				rss = kb * 1024
			case "VmHWM:":
				peak = kb * 1024
			}
		}
	}
	return rss, peak
}

func graphql(url, query string) error {
	body, _ := json.Marshal(map[string]any{"query": query})
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 || bytes.Contains(b[:min(len(b), 200)], []byte(`"errors"`)) {
		return fmt.Errorf("status %d: %.300s", resp.StatusCode, b)
	}
	return nil
}

func get(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// load runs f from clients goroutines for d and reports latency quantiles.
func load(clients int, d time.Duration, f func() error) map[string]float64 {
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first := true; first || time.Now().Before(end); first = false {
				t0 := time.Now()
				if err := f(); err != nil {
					fatal(err)
				}
				mu.Lock()
				lat = append(lat, time.Since(t0))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return quantiles(lat)
}

func repeat(n int, f func() error) map[string]float64 {
	var lat []time.Duration
	for range n {
		t0 := time.Now()
		if err := f(); err != nil {
			fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	return quantiles(lat)
}

func quantiles(lat []time.Duration) map[string]float64 {
	slices.Sort(lat)
	ms := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds()) / 1000
	}
	return map[string]float64{"p50_ms": ms(0.50), "p95_ms": ms(0.95), "requests": float64(len(lat))}
}

func markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n### Size %s: %d pods, %d nodes (%s, %s CPUs, %s)\n\n", report.Size, report.Pods, report.Nodes, report.Machine["cpu"], report.Machine["cpus"], report.Machine["go"])
	b.WriteString("| scenario | subject | figures |\n| --- | --- | --- |\n")
	for _, r := range report.Results {
		keys := make([]string, 0, len(r.Metrics))
		for k := range r.Metrics {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %.4g", k, r.Metrics[k]))
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", r.Scenario, r.Subject, strings.Join(parts, ", "))
	}
	if len(report.Notes) > 0 {
		b.WriteString("\n")
		for _, n := range report.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}
