// Command populate fills a bare kwok cluster (no controller manager, no
// scheduler: see tools/testbed/cluster.sh, CLUSTERGRAPH_TESTBED_BARE) with a
// realistic workload for the scale benchmarks: namespaces of Deployments,
// each with its ReplicaSet and pods (placed on nodes round-robin, two
// containers and an init container, the labels consoles filter by), a
// Service selecting each Deployment, and Events. It writes what the
// controllers would have (owner references, statuses), so nothing rewrites
// it later.
//
//	populate -kubeconfig FILE -pods 10000
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	podsPerDeployment = 10
	podsPerNamespace  = 200
)

var (
	tiers = []string{"web", "api", "db", "cache", "batch"}
	teams = []string{"payments", "search", "checkout", "identity", "catalog", "ads", "infra", "data"}
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "cluster to fill")
	pods := flag.Int("pods", 1000, "pods to create")
	workers := flag.Int("workers", 48, "concurrent writers")
	flag.Parse()
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 5000, 5000
	cl := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	nodes, err := cl.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) == 0 {
		log.Fatalf("nodes: %v (%d)", err, len(nodes.Items))
	}
	start := time.Now()
	deployments := *pods / podsPerDeployment
	namespaces := max(1, *pods/podsPerNamespace)
	log.Printf("creating %d pods in %d deployments over %d namespaces on %d nodes", *pods, deployments, namespaces, len(nodes.Items))
	for n := range namespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsName(n), Labels: map[string]string{"team": teams[n%len(teams)], "env": env(n)}}}
		if _, err := cl.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			log.Fatal(err)
		}
		// Without a controller manager nobody creates the default service
		// account that admission wants for every pod.
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
		if _, err := cl.CoreV1().ServiceAccounts(ns.Name).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			log.Fatal(err)
		}
	}
	jobs := make(chan int)
	var done, created atomic.Int64
	var wg sync.WaitGroup
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range jobs {
				created.Add(int64(deployment(ctx, cl, d, namespaces, nodes.Items)))
				if n := done.Add(1); n%100 == 0 {
					log.Printf("%d/%d deployments, %d objects, %s", n, deployments, created.Load(), time.Since(start).Round(time.Second))
				}
			}
		}()
	}
	for d := range deployments {
		jobs <- d
	}
	close(jobs)
	wg.Wait()
	log.Printf("done: %d objects in %s", created.Load(), time.Since(start).Round(time.Second))
}

func nsName(n int) string { return fmt.Sprintf("team-%03d", n) }

func env(n int) string {
	if n%4 == 0 {
		return "staging"
	}
	return "prod"
}

func must[T any](v T, err error) T {
	if err != nil && !apierrors.IsAlreadyExists(err) {
		log.Fatal(err)
	}
	return v
}

// deployment writes Deployment d with its ReplicaSet, pods, Service and
// Events, and returns how many objects it created.
func deployment(ctx context.Context, cl kubernetes.Interface, d, namespaces int, nodes []corev1.Node) int {
	ns := nsName(d % namespaces)
	name := fmt.Sprintf("svc-%05d", d)
	hash := fmt.Sprintf("%08x", d*2654435761%(1<<32))[:8]
	labels := map[string]string{"app": name, "tier": tiers[d%len(tiers)], "team": teams[d%len(teams)], "version": fmt.Sprintf("v%d", d%3+1)}
	podLabels := map[string]string{"pod-template-hash": hash}
	for k, v := range labels {
		podLabels[k] = v
	}
	replicas := int32(podsPerDeployment)
	req := corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("256Mi")}}
	spec := corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "migrate", Image: "example/" + name + "-migrate:1.4.2", Resources: req}},
		Containers: []corev1.Container{
			{Name: "app", Image: "example/" + name + ":1.4.2", Resources: req, Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				Env: []corev1.EnvVar{{Name: "TEAM", Value: labels["team"]}, {Name: "TIER", Value: labels["tier"]}}},
			{Name: "proxy", Image: "example/proxy:2.1", Resources: req},
		},
	}
	dep := must(cl.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}},
	}, metav1.CreateOptions{}))
	if dep.UID == "" {
		// Written by an earlier, interrupted run: finish what it left.
		dep = must(cl.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{}))
	}
	dep.Status = appsv1.DeploymentStatus{ObservedGeneration: dep.Generation, Replicas: replicas, UpdatedReplicas: replicas, ReadyReplicas: replicas, AvailableReplicas: replicas}
	must(cl.AppsV1().Deployments(ns).UpdateStatus(ctx, dep, metav1.UpdateOptions{}))
	yes := true
	rs := must(cl.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-" + hash, Labels: podLabels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: name, UID: dep.UID, Controller: &yes, BlockOwnerDeletion: &yes}}},
		Spec: appsv1.ReplicaSetSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name, "pod-template-hash": hash}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: podLabels}, Spec: spec}},
	}, metav1.CreateOptions{}))
	if rs.UID == "" {
		rs = must(cl.AppsV1().ReplicaSets(ns).Get(ctx, name+"-"+hash, metav1.GetOptions{}))
	}
	rs.Status = appsv1.ReplicaSetStatus{Replicas: replicas, ReadyReplicas: replicas, AvailableReplicas: replicas, FullyLabeledReplicas: replicas, ObservedGeneration: rs.Generation}
	must(cl.AppsV1().ReplicaSets(ns).UpdateStatus(ctx, rs, metav1.UpdateOptions{}))
	n := 2
	for i := range podsPerDeployment {
		p := spec.DeepCopy()
		p.NodeName = nodes[(d*podsPerDeployment+i)%len(nodes)].Name
		must(cl.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%s-%05d", name, hash[:5], i), Labels: podLabels,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: &yes, BlockOwnerDeletion: &yes}}},
			Spec: *p,
		}, metav1.CreateOptions{}))
		n++
	}
	svc := corev1.ServiceSpec{Selector: map[string]string{"app": name}, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}}
	if d >= 150 {
		// kwok's service range is a /24: past the first 150, headless.
		svc.ClusterIP = corev1.ClusterIPNone
	}
	must(cl.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: svc}, metav1.CreateOptions{}))
	now := metav1.Now()
	for i, reason := range []string{"ScalingReplicaSet", "Scheduled"} {
		kind, obj := "Deployment", name
		if i == 1 {
			kind, obj = "Pod", fmt.Sprintf("%s-%s-%05d", name, hash[:5], 0)
		}
		must(cl.CoreV1().Events(ns).Create(ctx, &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: fmt.Sprintf("%s.%d", name, i)},
			InvolvedObject: corev1.ObjectReference{Kind: kind, Namespace: ns, Name: obj},
			Reason:         reason, Message: reason + " for " + obj, Type: corev1.EventTypeNormal,
			Source: corev1.EventSource{Component: "populate"}, Count: 1, FirstTimestamp: now, LastTimestamp: now,
		}, metav1.CreateOptions{}))
	}
	return n + 3
}
