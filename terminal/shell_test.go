package terminal

import (
	"errors"
	"testing"

	"github.com/clustergraph/clustergraph/caller"
	"github.com/clustergraph/clustergraph/errkind"
)

// TestShellCapPerUser: a user's shells are capped; another user's and a
// freed slot are not held back.
func TestShellCapPerUser(t *testing.T) {
	tokens := NewShellTokens()
	alice, bob := &caller.Subject{User: "alice"}, &caller.Subject{User: "bob"}
	var held []string
	for range 2 {
		tok, err := tokens.Add(ShellSession{Cluster: "c", Subject: alice}, 2)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, tok)
	}
	if _, err := tokens.Add(ShellSession{Cluster: "c", Subject: alice}, 2); !errors.Is(err, ErrTooManyShells) || !errors.Is(err, errkind.BadInput) {
		t.Errorf("a third shell: %v, want ErrTooManyShells", err)
	}
	if _, err := tokens.Add(ShellSession{Cluster: "c", Subject: bob}, 2); err != nil {
		t.Errorf("another user's shell: %v", err)
	}
	tokens.Remove(held[0])
	if _, err := tokens.Add(ShellSession{Cluster: "c", Subject: alice}, 2); err != nil {
		t.Errorf("a shell after one closed: %v", err)
	}
	if a, b := NewShellID(), NewShellID(); a == b || len(a) != 32 {
		t.Errorf("shell ids %q %q", a, b)
	}
}
