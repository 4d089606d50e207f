package stream

import (
	"bufio"
	"context"
	"errors"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/k8s"
)

// LogLine is one line of a container's log.
type LogLine struct {
	Pod, Container string
	Line           string
	// Time is set when the log was asked for with timestamps.
	Time time.Time
	// Truncated marks a line cut at MaxLogLine bytes; the rest follows in
	// further LogLines.
	Truncated bool
}

// MaxLogLine bounds one delivered line; longer lines arrive in pieces.
const MaxLogLine = 16 << 10

// ContainersOf returns the names of a pod's containers (init containers
// first when init is set).
func ContainersOf(p *corev1.Pod, init bool) []string {
	var out []string
	if init {
		for _, ct := range p.Spec.InitContainers {
			out = append(out, ct.Name)
		}
	}
	for _, ct := range p.Spec.Containers {
		out = append(out, ct.Name)
	}
	return out
}

// ContainerLog sends the lines of one container's log to out, as the
// context's subject, until the log ends (the container stopped, or follow
// is off) or ctx ends. Invalid UTF-8 (binary output) is replaced, and long
// lines are cut into pieces of MaxLogLine bytes.
func ContainerLog(ctx context.Context, c *k8s.Cluster, namespace, pod string, opts corev1.PodLogOptions, out chan<- LogLine) error {
	client, err := c.ClientFor(ctx)
	if err != nil {
		return err
	}
	rc, err := client.CoreV1().Pods(namespace).GetLogs(pod, &opts).Stream(ctx)
	if err != nil {
		return c.APIError(err, "logs of "+namespace+"/"+pod)
	}
	defer rc.Close()
	r := bufio.NewReaderSize(rc, MaxLogLine)
	continued := false // the previous piece was cut: this one has no timestamp
	for {
		line, isPrefix, err := r.ReadLine()
		if len(line) > 0 || (err == nil && !isPrefix) {
			l := LogLine{Pod: pod, Container: opts.Container, Line: string(line), Truncated: isPrefix}
			if opts.Timestamps && !continued {
				if ts, rest, ok := strings.Cut(l.Line, " "); ok {
					if t, perr := time.Parse(time.RFC3339Nano, ts); perr == nil {
						l.Time, l.Line = t, rest
					}
				}
			}
			if !utf8.ValidString(l.Line) {
				l.Line = strings.ToValidUTF8(l.Line, "\uFFFD")
			}
			select {
			case out <- l:
			case <-ctx.Done():
				return nil
			}
			continued = isPrefix
		}
		switch {
		case errors.Is(err, io.EOF), ctx.Err() != nil:
			return nil
		case err != nil:
			if apierrors.IsNotFound(err) {
				return nil // the pod went away
			}
			return &k8s.ClusterError{Cluster: c.Name, Err: errkind.Newf(errkind.Unavailable, "reading logs of %s/%s: %v", namespace, pod, err)}
		}
	}
}
