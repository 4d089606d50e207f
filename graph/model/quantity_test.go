package model_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/clustergraph/clustergraph/graph/model"
	"github.com/clustergraph/clustergraph/k8s"
)

// TestFromUsage: usage is served as numbers and as the quantities
// kubectl prints (CPU in cores or millicores, memory in binary units when
// they divide it).
func TestFromUsage(t *testing.T) {
	for _, tc := range []struct {
		in   k8s.Usage
		want model.ResourceUsage
	}{
		{k8s.Usage{}, model.ResourceUsage{CPU: "0", Memory: "0"}},
		{k8s.Usage{CPUMillis: 250, MemoryBytes: 512 << 20}, model.ResourceUsage{CPUMillis: 250, MemoryBytes: 512 << 20, CPU: "250m", Memory: "512Mi"}},
		{k8s.Usage{CPUMillis: 2000, MemoryBytes: 1 << 30}, model.ResourceUsage{CPUMillis: 2000, MemoryBytes: 1 << 30, CPU: "2", Memory: "1Gi"}},
		{k8s.Usage{CPUMillis: 1500, MemoryBytes: 1e9}, model.ResourceUsage{CPUMillis: 1500, MemoryBytes: 1e9, CPU: "1500m", Memory: "1000000000"}},
	} {
		if diff := cmp.Diff(&tc.want, model.FromUsage(tc.in)); diff != "" {
			t.Errorf("FromUsage(%+v) (-want +got):\n%s", tc.in, diff)
		}
	}
}

// TestNodeResources: a node's capacity and allocatable are parsed into
// numbers (what is not set is 0) and kept as the quantity strings they
// were given.
func TestNodeResources(t *testing.T) {
	n := model.NewNode(nil, &corev1.Node{Status: corev1.NodeStatus{
		Capacity: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi"),
			corev1.ResourcePods: resource.MustParse("110"), corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
			"nvidia.com/gpu": resource.MustParse("2"),
		},
		Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3500m"), corev1.ResourceMemory: resource.MustParse("15.5Gi")},
	}})
	want := &model.NodeResources{CPUMillis: 4000, MemoryBytes: 16 << 30, Pods: 110, EphemeralStorageBytes: 100 << 30,
		Quantities: model.JSON{V: map[string]string{"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi", "nvidia.com/gpu": "2"}}}
	if diff := cmp.Diff(want, n.Capacity()); diff != "" {
		t.Errorf("capacity (-want +got):\n%s", diff)
	}
	want = &model.NodeResources{CPUMillis: 3500, MemoryBytes: 31 << 29,
		Quantities: model.JSON{V: map[string]string{"cpu": "3500m", "memory": "15872Mi"}}}
	if diff := cmp.Diff(want, n.Allocatable()); diff != "" {
		t.Errorf("allocatable (-want +got):\n%s", diff)
	}
}

// TestClaimSizes: a claim's requested size is always served; its
// capacity only once it is bound.
func TestClaimSizes(t *testing.T) {
	claim := &corev1.PersistentVolumeClaim{
		Spec: corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")}}},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
	}
	p := model.NewPersistentVolumeClaim(nil, claim)
	if got := p.RequestBytes(); got != 10<<30 {
		t.Errorf("requestBytes = %d, want %d", got, 10<<30)
	}
	if got := p.CapacityBytes(); got != nil {
		t.Errorf("a pending claim's capacityBytes = %d, want null", *got)
	}
	claim.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound,
		Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("16Gi")}}
	if got := p.CapacityBytes(); got == nil || *got != 16<<30 {
		t.Errorf("a bound claim's capacityBytes = %v, want %d", got, 16<<30)
	}
}
