// Command peer is the scale benchmarks' baseline: bare client-go informers
// over the same kinds clustergraph caches, with two hand-written JSON
// endpoints over them. It is what a careful engineer would write for one
// screen with no GraphQL, no access control and no generality:
//
//	/readyz  200 once every informer has synced
//	/pods    every pod with a console's columns, as encoding/json writes them
//	/deep    every Deployment with its pods and each pod's node, walking
//	         owner indexes (the floor for clustergraph's deep query)
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// podRow is what a console's pod list shows.
type podRow struct {
	Name      string    `json:"name"`
	Namespace string    `json:"namespace"`
	Status    string    `json:"status"`
	Ready     bool      `json:"ready"`
	Restarts  int       `json:"restarts"`
	PodIP     string    `json:"podIP"`
	NodeName  string    `json:"nodeName"`
	Created   time.Time `json:"creationTimestamp"`
}

type deepPod struct {
	Name string `json:"name"`
	Node string `json:"node"`
}

type deepDeployment struct {
	Name      string    `json:"name"`
	Namespace string    `json:"namespace"`
	Pods      []deepPod `json:"pods"`
}

const byOwner = "owner"

func ownerIndex(obj any) ([]string, error) {
	m, err := metaOf(obj)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, o := range m.GetOwnerReferences() {
		out = append(out, string(o.UID))
	}
	return out, nil
}

func metaOf(obj any) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, os.ErrInvalid
	}
	return m, nil
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "cluster")
	listen := flag.String("listen", "127.0.0.1:0", "HTTP address; the chosen one is printed")
	flag.Parse()
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Fatal(err)
	}
	// clustergraph's own settings: protobuf for built-in kinds.
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.QPS, cfg.Burst = 100, 200
	cl := kubernetes.NewForConfigOrDie(cfg)
	f := informers.NewSharedInformerFactory(cl, 0)
	strip := func(obj any) (any, error) {
		if m, ok := obj.(metav1.Object); ok {
			m.SetManagedFields(nil)
		}
		return obj, nil
	}
	pods := f.Core().V1().Pods().Informer()
	rss := f.Apps().V1().ReplicaSets().Informer()
	deps := f.Apps().V1().Deployments().Informer()
	nodes := f.Core().V1().Nodes().Informer()
	_ = pods.AddIndexers(cache.Indexers{byOwner: ownerIndex})
	_ = rss.AddIndexers(cache.Indexers{byOwner: ownerIndex})
	all := []cache.SharedIndexInformer{pods, rss, deps, nodes,
		f.Core().V1().Namespaces().Informer(), f.Core().V1().Services().Informer(), f.Core().V1().Events().Informer(),
		f.Core().V1().PersistentVolumeClaims().Informer(), f.Discovery().V1().EndpointSlices().Informer(),
		f.Apps().V1().StatefulSets().Informer(), f.Apps().V1().DaemonSets().Informer(),
		f.Batch().V1().Jobs().Informer(), f.Batch().V1().CronJobs().Informer(), f.Networking().V1().Ingresses().Informer(),
		f.Rbac().V1().Roles().Informer(), f.Rbac().V1().RoleBindings().Informer(),
		f.Rbac().V1().ClusterRoles().Informer(), f.Rbac().V1().ClusterRoleBindings().Informer()}
	for _, i := range all {
		_ = i.SetTransform(strip)
	}
	mcfg := *cfg
	mcfg.ContentType = ""
	mf := metadatainformer.NewSharedInformerFactory(metadata.NewForConfigOrDie(&mcfg), 0)
	for _, r := range []string{"configmaps", "secrets"} {
		all = append(all, mf.ForResource(schema.GroupVersionResource{Version: "v1", Resource: r}).Informer())
	}
	stop := make(chan struct{})
	f.Start(stop)
	mf.Start(stop)
	var synced atomic.Bool
	go func() {
		start := time.Now()
		for _, i := range all {
			cache.WaitForCacheSync(stop, i.HasSynced)
		}
		synced.Store(true)
		log.Printf("synced in %s", time.Since(start))
	}()

	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !synced.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("/pods", func(w http.ResponseWriter, _ *http.Request) {
		items := pods.GetStore().List()
		rows := make([]podRow, 0, len(items))
		for _, o := range items {
			p := o.(*corev1.Pod)
			r := podRow{Name: p.Name, Namespace: p.Namespace, Status: string(p.Status.Phase), PodIP: p.Status.PodIP, NodeName: p.Spec.NodeName, Created: p.CreationTimestamp.Time}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady {
					r.Ready = c.Status == corev1.ConditionTrue
				}
			}
			for _, cs := range p.Status.ContainerStatuses {
				r.Restarts += int(cs.RestartCount)
			}
			rows = append(rows, r)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(rows)
	})
	mux.HandleFunc("/deep", func(w http.ResponseWriter, _ *http.Request) {
		items := deps.GetStore().List()
		out := make([]deepDeployment, 0, len(items))
		for _, o := range items {
			d := o.(*appsv1.Deployment)
			dd := deepDeployment{Name: d.Name, Namespace: d.Namespace}
			owned, _ := rss.GetIndexer().ByIndex(byOwner, string(d.UID))
			for _, r := range owned {
				ps, _ := pods.GetIndexer().ByIndex(byOwner, string(r.(*appsv1.ReplicaSet).UID))
				for _, po := range ps {
					p := po.(*corev1.Pod)
					node := ""
					if n, ok, _ := nodes.GetStore().GetByKey(p.Spec.NodeName); ok {
						node = n.(*corev1.Node).Name
					}
					dd.Pods = append(dd.Pods, deepPod{Name: p.Name, Node: node})
				}
			}
			out = append(out, dd)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	// The driver reads the address from the first line of stdout.
	os.Stdout.WriteString(ln.Addr().String() + "\n")
	log.Fatal(http.Serve(ln, mux))
}
