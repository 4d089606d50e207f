package model

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func milliQuantity(m int64) string { return resource.NewMilliQuantity(m, resource.DecimalSI).String() }

func byteQuantity(b int64) string { return resource.NewQuantity(b, resource.BinarySI).String() }

// quantities renders a resource list as a JSON object of quantity strings.
func quantities(l corev1.ResourceList) JSON {
	m := make(map[string]string, len(l))
	for k, v := range l {
		m[string(k)] = v.String()
	}
	return JSON{V: m}
}

func nodeResources(l corev1.ResourceList) *NodeResources {
	return &NodeResources{
		CPUMillis:             l.Cpu().MilliValue(),
		MemoryBytes:           l.Memory().Value(),
		Pods:                  int(l.Pods().Value()),
		EphemeralStorageBytes: l.StorageEphemeral().Value(),
		Quantities:            quantities(l),
	}
}
