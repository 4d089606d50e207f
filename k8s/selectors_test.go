package k8s

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/clustergraph/clustergraph/errkind"
)

// terms returns a selector of n requirements a0=v,a1=v,...
func terms(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("a%d=v", i)
	}
	return strings.Join(parts, ",")
}

// setOf returns a label selector of one in requirement with n values.
func setOf(n int) string {
	vals := make([]string, n)
	for i := range vals {
		vals[i] = fmt.Sprintf("v%d", i)
	}
	return "app in (" + strings.Join(vals, ",") + ")"
}

func TestParseSelectorsBounds(t *testing.T) {
	long := "app=" + strings.Repeat("a,b=", MaxSelectorBytes)
	for _, tc := range []struct {
		name, label, field string
		refusal            string // "" when accepted
	}{
		{"a console's selector", "app=web,tier notin (db)", "spec.nodeName=n1", ""},
		{"requirements at the limit", terms(MaxSelectorTerms), terms(MaxSelectorTerms), ""},
		{"set values at the limit", setOf(MaxSelectorTerms), "", ""},
		{"a long label selector", long, "", fmt.Sprintf("the label selector is %d bytes long; the limit is %d bytes", len(long), MaxSelectorBytes)},
		{"a long field selector", "", long, fmt.Sprintf("the field selector is %d bytes long; the limit is %d bytes", len(long), MaxSelectorBytes)},
		{"one label requirement too many", terms(MaxSelectorTerms + 1), "", fmt.Sprintf("the label selector has %d requirements (each value of an in or notin set counts as one); the limit is %d", MaxSelectorTerms+1, MaxSelectorTerms)},
		{"one set value too many", setOf(MaxSelectorTerms + 1), "", fmt.Sprintf("the label selector has %d requirements", MaxSelectorTerms+1)},
		{"one field requirement too many", "", terms(MaxSelectorTerms + 1), fmt.Sprintf("the field selector has %d requirements; the limit is %d", MaxSelectorTerms+1, MaxSelectorTerms)},
		{"the 1 MiB selector of the review", strings.Repeat("a,", 1<<19), "", "the label selector is 1048576 bytes long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParseSelectors(tc.label, tc.field)
			switch {
			case tc.refusal == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.refusal == "":
			case !errors.Is(err, errkind.BadInput) || !strings.Contains(err.Error(), tc.refusal):
				t.Errorf("error %v, want errkind.BadInput saying %q", err, tc.refusal)
			case len(err.Error()) > 500:
				t.Errorf("the refusal quotes the selector: %d bytes", len(err.Error()))
			}
		})
	}
}

// TestParseSelectorsOncePerSelector: a repeated selector comes from the
// cache: a result planted under a key no other test uses is what comes back.
func TestParseSelectorsOncePerSelector(t *testing.T) {
	planted := errors.New("from the cache")
	key := selectorKey{"cache-probe=planted", ""}
	selectors.mu.Lock()
	selectors.m[key] = parsedSelectors{err: planted}
	selectors.mu.Unlock()
	if _, _, err := ParseSelectors(key.label, key.field); err != planted {
		t.Errorf("ParseSelectors = %v, want the cached result", err)
	}
	for i := range 3 * selectorCacheSize {
		if _, _, err := ParseSelectors(fmt.Sprintf("probe-%d=x", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	selectors.mu.Lock()
	defer selectors.mu.Unlock()
	if n := len(selectors.m); n > selectorCacheSize {
		t.Errorf("the cache holds %d parses, over its bound %d", n, selectorCacheSize)
	}
}

// FuzzParseSelectors: any input is refused with errkind.BadInput or accepted
// within the bounds, exactly as apimachinery parses it, and the same again
// when repeated (from the cache); an oversized selector is never quoted.
func FuzzParseSelectors(f *testing.F) {
	for _, seed := range [][2]string{
		{"", ""},
		{"app=web,tier notin (db)", "spec.nodeName=n1"},
		{"!app,env in (a,b),x!=y", "metadata.name!=x,metadata.namespace==y"},
		{"a in (", "=="},
		{terms(MaxSelectorTerms), terms(MaxSelectorTerms)},
		{terms(MaxSelectorTerms + 1), ""},
		{setOf(MaxSelectorTerms + 1), ""},
		{strings.Repeat("a,", MaxSelectorBytes/2+1), ""},
		{"", strings.Repeat("a=b,", MaxSelectorBytes/4+1)},
		{"k=\xff", "f=\x00"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, label, field string) {
		ls, fs, err := ParseSelectors(label, field)
		ls2, fs2, err2 := ParseSelectors(label, field)
		if (err == nil) != (err2 == nil) {
			t.Fatalf("repeated parse differs: %v, then %v", err, err2)
		}
		if err != nil {
			if !errors.Is(err, errkind.BadInput) {
				t.Fatalf("error %v is not errkind.BadInput", err)
			}
			for _, s := range []string{label, field} {
				if len(s) > MaxSelectorBytes && strings.Contains(err.Error(), s) {
					t.Fatal("the refusal quotes an oversized selector")
				}
			}
			return
		}
		if len(label) > MaxSelectorBytes || len(field) > MaxSelectorBytes {
			t.Fatalf("accepted selectors of %d and %d bytes", len(label), len(field))
		}
		if n := labelTerms(ls); n > MaxSelectorTerms {
			t.Fatalf("accepted a label selector of %d terms", n)
		}
		if n := len(fs.Requirements()); n > MaxSelectorTerms {
			t.Fatalf("accepted a field selector of %d requirements", n)
		}
		want, werr := labels.Parse(label)
		wantF, ferr := fields.ParseSelector(field)
		if werr != nil || ferr != nil {
			t.Fatalf("accepted what apimachinery refuses: %v, %v", werr, ferr)
		}
		if ls.String() != want.String() || fs.String() != wantF.String() || ls2.String() != want.String() || fs2.String() != wantF.String() {
			t.Fatalf("parsed %q %q, want %q %q", ls, fs, want, wantF)
		}
	})
}
