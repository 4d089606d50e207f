package db_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/clustergraph/clustergraph/db"
	"github.com/clustergraph/clustergraph/internal/testenv"
)

// eachDB runs f against a fresh SQLite file and a fresh MariaDB database.
func eachDB(t *testing.T, f func(t *testing.T, s *db.Store)) {
	t.Helper()
	for _, d := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "cg.db") }},
		{"mariadb", func(t *testing.T) string { return testenv.MySQL(t) }},
	} {
		t.Run(d.name, func(t *testing.T) {
			s, err := db.Open(context.Background(), d.dsn(t), db.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			f(t, s)
		})
	}
}

func TestMigrations(t *testing.T) {
	eachDB(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		v, err := s.Version(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v < 1 {
			t.Fatalf("schema version %d after Open, want >= 1", v)
		}
	})
	t.Run("reopen applies nothing twice", func(t *testing.T) {
		dsn := "sqlite://" + filepath.Join(t.TempDir(), "cg.db")
		for range 2 {
			s, err := db.Open(context.Background(), dsn, db.Options{})
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
		}
	})
}

func TestOpenErrors(t *testing.T) {
	for _, dsn := range []string{"postgres://x", "sqlite:", "mysql://bad dsn"} {
		if _, err := db.Open(context.Background(), dsn, db.Options{}); err == nil {
			t.Errorf("Open(%q) succeeded", dsn)
		}
	}
}
