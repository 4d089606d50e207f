package caller

import "testing"

// TestSubjectKeysDistinct: subjects differing in how their strings are
// split between user and groups never share an access cache key.
func TestSubjectKeysDistinct(t *testing.T) {
	subjects := []*Subject{
		{User: "a\x00b"},
		{User: "a", Groups: []string{"b"}},
		{User: "a", Groups: []string{"b", ""}},
		{User: "a", Groups: []string{"b\x00"}},
		{User: "a:b"},
		{User: "1:a"},
		{User: "a", Identity: "kwok-cg-a"},
		{User: "a", Identity: "kwok-cg-b"},
	}
	seen := map[string]int{}
	for i, s := range subjects {
		k := s.Key()
		if j, dup := seen[k]; dup {
			t.Errorf("subjects %d %+v and %d %+v share the key %q", j, subjects[j], i, s, k)
		}
		seen[k] = i
	}
	// Group order does not matter.
	if (&Subject{User: "u", Groups: []string{"x", "y"}}).Key() != (&Subject{User: "u", Groups: []string{"y", "x"}}).Key() {
		t.Error("group order changes the key")
	}
}

// TestReviewKeysDistinct: subjects differing only in UID or extra
// attributes never share a key of the authorizer's answers, and share the
// key of RBAC answers, which never depend on them.
func TestReviewKeysDistinct(t *testing.T) {
	subjects := []*Subject{
		{User: "a"},
		{User: "a", UID: "1"},
		{User: "a", Extra: map[string][]string{"k": nil}},
		{User: "a", Extra: map[string][]string{"k": {""}}},
		{User: "a", Extra: map[string][]string{"k": {"v"}}},
		{User: "a", Extra: map[string][]string{"k": {"v", "w"}}},
		{User: "a", Extra: map[string][]string{"k": {"vw"}}},
		{User: "a", Extra: map[string][]string{"k": {"v"}, "l": {"w"}}},
		{User: "a", Extra: map[string][]string{"k": {"v", "1:l", "1:w"}}},
		{User: "a", Extra: map[string][]string{"kv": {}}},
	}
	seen := map[string]int{}
	for i, s := range subjects {
		if s.Key() != subjects[0].Key() {
			t.Errorf("%+v: RBAC key differs", s)
		}
		k := s.ReviewKey()
		if j, dup := seen[k]; dup {
			t.Errorf("subjects %d %+v and %d %+v share the review key %q", j, subjects[j], i, s, k)
		}
		seen[k] = i
	}
}
