package k8s

import (
	"context"
	"io"
	"strings"

	"github.com/clustergraph/clustergraph/errkind"
)

// KubeletGet reads path from node's kubelet through the apiserver's node
// proxy (GET /api/v1/nodes/NODE/proxy/PATH), as clustergraph itself: it needs
// get on nodes/proxy. The caller closes the body.
func (c *Cluster) KubeletGet(ctx context.Context, node, path string) (io.ReadCloser, error) {
	body, err := c.Typed.CoreV1().RESTClient().Get().
		AbsPath("/api/v1/nodes", node, "proxy", strings.TrimPrefix(path, "/")).
		// The Prometheus text format first: the clientset would ask for
		// Kubernetes protobuf. Anything else after it, as kubectl does: some
		// endpoints (go-restful routes) refuse a request without */*.
		SetHeader("Accept", "text/plain;version=0.0.4, */*;q=0.1").
		Stream(ctx)
	if err != nil {
		return nil, &ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.Unavailable, "node %s: %v", node, err)}
	}
	return body, nil
}
