package metrics

import "sync"

// Other is the label value of every name past a Names' cap.
const Other = "other"

// Names bounds the values of a label that clients choose (GraphQL
// operation names): the names it was made with, then the first max other
// names seen, and Other for every later one. A client cannot grow the
// series past that, whatever it sends.
type Names struct {
	max int

	mu    sync.Mutex
	known map[string]bool
	extra int
}

// NewNames returns a Names that keeps the given names, and up to limit
// others as they are first seen.
func NewNames(limit int, names ...string) *Names {
	n := &Names{max: limit, known: make(map[string]bool, len(names))}
	for _, name := range names {
		n.known[name] = true
	}
	return n
}

// Label is the label value of name: name itself when kept, else Other.
// The empty name (an anonymous operation) is always kept.
func (n *Names) Label(name string) string {
	if name == "" {
		return ""
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.known[name] {
		return name
	}
	if n.extra >= n.max {
		return Other
	}
	n.extra++
	n.known[name] = true
	return name
}
