package k8s

import (
	"sync"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/clustergraph/clustergraph/errkind"
)

// Selector bounds. The apiserver reads a selector from the request URL, so
// its only bound on one is the 1 MiB of request header it accepts; its
// parser checks each key and value, as labels.Parse does here. clustergraph
// reads selectors from a body of up to 1 MiB and matches one against every
// cached object of a list, once per alias, trying each value of an in or
// notin set in turn, so it bounds them itself, far above what a console or
// kubectl user writes.
const (
	// MaxSelectorBytes bounds the length of a label or a field selector.
	MaxSelectorBytes = 4 << 10
	// MaxSelectorTerms bounds a selector's requirements; each value of an
	// in or notin set counts as one, since matching tries each.
	MaxSelectorTerms = 100
)

// parseBoundedSelectors parses a label and a field selector within the
// bounds; errors are errkind.BadInput and name the bound, and never quote a
// selector over the length bound.
func parseBoundedSelectors(label, field string) (labels.Selector, fields.Selector, error) {
	for _, s := range []struct{ kind, text string }{{"label", label}, {"field", field}} {
		if len(s.text) > MaxSelectorBytes {
			return nil, nil, errkind.BadInputf("the %s selector is %d bytes long; the limit is %d bytes", s.kind, len(s.text), MaxSelectorBytes)
		}
	}
	ls, err := labels.Parse(label)
	if err != nil {
		return nil, nil, errkind.BadInputf("invalid label selector %q: %v", label, err)
	}
	if n := labelTerms(ls); n > MaxSelectorTerms {
		return nil, nil, errkind.BadInputf("the label selector has %d requirements (each value of an in or notin set counts as one); the limit is %d", n, MaxSelectorTerms)
	}
	fs, err := fields.ParseSelector(field)
	if err != nil {
		return nil, nil, errkind.BadInputf("invalid field selector %q: %v", field, err)
	}
	if n := len(fs.Requirements()); n > MaxSelectorTerms {
		return nil, nil, errkind.BadInputf("the field selector has %d requirements; the limit is %d", n, MaxSelectorTerms)
	}
	return ls, fs, nil
}

// labelTerms counts a label selector's requirements, a set's values each.
func labelTerms(s labels.Selector) int {
	reqs, _ := s.Requirements()
	n := 0
	for _, r := range reqs {
		n += max(1, r.Values().Len())
	}
	return n
}

// selectorCacheSize bounds the parses kept: each key is at most twice
// MaxSelectorBytes, so the cache holds at most a few MiB.
const selectorCacheSize = 256

// parsedSelectors are the remembered result of one parse.
type parsedSelectors struct {
	labels labels.Selector
	fields fields.Selector
	err    error
}

type selectorKey struct{ label, field string }

// selectorCache remembers recent parses, so a selector that a request
// repeats under many aliases (each resolver parses its own arguments) is
// parsed once, not once per alias. Parsed selectors are never changed
// after parsing, so callers may share them. When full, it starts over.
type selectorCache struct {
	mu sync.Mutex
	m  map[selectorKey]parsedSelectors
}

var selectors = &selectorCache{m: map[selectorKey]parsedSelectors{}}

func (c *selectorCache) parse(label, field string) (labels.Selector, fields.Selector, error) {
	if len(label) > MaxSelectorBytes || len(field) > MaxSelectorBytes {
		return parseBoundedSelectors(label, field) // refused before parsing; not worth keeping
	}
	key := selectorKey{label, field}
	c.mu.Lock()
	p, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return p.labels, p.fields, p.err
	}
	p.labels, p.fields, p.err = parseBoundedSelectors(label, field)
	c.mu.Lock()
	if len(c.m) >= selectorCacheSize {
		clear(c.m)
	}
	c.m[key] = p
	c.mu.Unlock()
	return p.labels, p.fields, p.err
}
