package model

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/clustergraph/clustergraph/k8s"
)

// Service is a view over a cached Service.
type Service struct {
	Object
	S *corev1.Service
}

// NewService wraps a cached service.
func NewService(c *k8s.Cluster, s *corev1.Service) *Service { return &Service{Object{c, s}, s} }

// Name is the service's name.
func (s *Service) Name() string { return s.S.Name }

// Namespace is the service's namespace.
func (s *Service) Namespace() string { return s.S.Namespace }

// Type is the service type.
func (s *Service) Type() string { return string(s.S.Spec.Type) }

// ClusterIP is the cluster IP.
func (s *Service) ClusterIP() *string { return optional(s.S.Spec.ClusterIP) }

// ExternalAddresses are load balancer ingress IPs and hostnames.
func (s *Service) ExternalAddresses() []string {
	out := []string{}
	for _, i := range s.S.Status.LoadBalancer.Ingress {
		if i.IP != "" {
			out = append(out, i.IP)
		}
		if i.Hostname != "" {
			out = append(out, i.Hostname)
		}
	}
	return out
}

// Ports lists the service's ports.
func (s *Service) Ports() []*ServicePort {
	out := make([]*ServicePort, len(s.S.Spec.Ports))
	for i, p := range s.S.Spec.Ports {
		sp := &ServicePort{Name: optional(p.Name), Protocol: string(p.Protocol), Port: int(p.Port), TargetPort: optional(p.TargetPort.String())}
		if p.NodePort != 0 {
			sp.NodePort = intPtr(p.NodePort)
		}
		out[i] = sp
	}
	return out
}

// Selector is the pod selector, or nil.
func (s *Service) Selector() *JSON {
	if len(s.S.Spec.Selector) == 0 {
		return nil
	}
	j := stringMap(s.S.Spec.Selector)
	return &j
}

// Ingress is a view over a cached Ingress.
type Ingress struct {
	Object
	I *networkingv1.Ingress
}

// NewIngress wraps a cached ingress.
func NewIngress(c *k8s.Cluster, i *networkingv1.Ingress) *Ingress { return &Ingress{Object{c, i}, i} }

// Name is the ingress's name.
func (i *Ingress) Name() string { return i.I.Name }

// Namespace is the ingress's namespace.
func (i *Ingress) Namespace() string { return i.I.Namespace }

// ClassName is the ingress class.
func (i *Ingress) ClassName() *string {
	if i.I.Spec.IngressClassName == nil {
		return nil
	}
	return optional(*i.I.Spec.IngressClassName)
}

// Hosts are the rules' hosts.
func (i *Ingress) Hosts() []string {
	out := []string{}
	for _, r := range i.I.Spec.Rules {
		if r.Host != "" {
			out = append(out, r.Host)
		}
	}
	return out
}

// Addresses are the load balancer addresses.
func (i *Ingress) Addresses() []string {
	out := []string{}
	for _, l := range i.I.Status.LoadBalancer.Ingress {
		if l.IP != "" {
			out = append(out, l.IP)
		}
		if l.Hostname != "" {
			out = append(out, l.Hostname)
		}
	}
	return out
}

// Paths are the path rules, the default backend first as path "*".
func (i *Ingress) Paths() []*IngressPath {
	var out []*IngressPath
	add := func(host, path string, pathType *networkingv1.PathType, b networkingv1.IngressBackend) {
		p := &IngressPath{C: i.C, Namespace: i.I.Namespace, Host: optional(host), Path: path}
		if pathType != nil {
			p.PathType = optional(string(*pathType))
		}
		if b.Service != nil {
			p.ServiceName = optional(b.Service.Name)
			if b.Service.Port.Name != "" {
				p.ServicePort = optional(b.Service.Port.Name)
			} else {
				p.ServicePort = optional(strconv.Itoa(int(b.Service.Port.Number)))
			}
		}
		out = append(out, p)
	}
	if b := i.I.Spec.DefaultBackend; b != nil {
		add("", "*", nil, *b)
	}
	for _, r := range i.I.Spec.Rules {
		if r.HTTP == nil {
			continue
		}
		for _, p := range r.HTTP.Paths {
			add(r.Host, p.Path, p.PathType, p.Backend)
		}
	}
	if out == nil {
		out = []*IngressPath{}
	}
	return out
}

// IngressPath is one path rule; its service is resolved by a loader.
type IngressPath struct {
	// C and Namespace locate the backend service.
	C         *k8s.Cluster
	Namespace string

	Host        *string
	Path        string
	PathType    *string
	ServiceName *string
	ServicePort *string
}

// FromEndpointSlices flattens a service's EndpointSlices.
func FromEndpointSlices(slices []*discoveryv1.EndpointSlice) []*Endpoint {
	out := []*Endpoint{}
	for _, s := range slices {
		for _, e := range s.Endpoints {
			ep := &Endpoint{Addresses: e.Addresses, Ready: e.Conditions.Ready == nil || *e.Conditions.Ready}
			if e.NodeName != nil {
				ep.NodeName = optional(*e.NodeName)
			}
			if e.TargetRef != nil && e.TargetRef.Kind == "Pod" {
				ep.PodName = optional(e.TargetRef.Name)
			}
			out = append(out, ep)
		}
	}
	return out
}
