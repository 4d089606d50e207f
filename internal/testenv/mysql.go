package testenv

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
)

// EnvMySQL is the DSN (go-sql-driver form) of the MariaDB server
// tools/test.sh starts with tools/testbed/mariadb.sh; its user may create
// databases.
const EnvMySQL = "CLUSTERGRAPH_TEST_MYSQL_DSN"

var dbSeq atomic.Int64

// MySQL creates a database of its own for the test on the testbed's
// MariaDB, drops it when the test ends, and returns its clustergraph DSN
// ("mysql://…"). Like Integration, it fails when the server is missing.
func MySQL(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the testbed's MariaDB (make test)")
	}
	dsn := os.Getenv(EnvMySQL)
	if dsn == "" {
		t.Fatalf("%s is not set: storage tests run against a real MariaDB; use `make test` (or tools/testbed/mariadb.sh up and export the DSN it prints), or -short to leave them out", EnvMySQL)
	}
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("%s: %v", EnvMySQL, err)
	}
	name := fmt.Sprintf("cgtest_%d_%d_%s", os.Getpid(), dbSeq.Add(1), sanitize(t.Name()))
	if len(name) > 64 {
		name = name[:64]
	}
	admin, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE `" + name + "`"); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			return
		}
		defer db.Close()
		db.SetConnMaxLifetime(10 * time.Second)
		_, _ = db.Exec("DROP DATABASE IF EXISTS `" + name + "`")
	})
	cfg.DBName = name
	return "mysql://" + cfg.FormatDSN()
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
}

// MariaDBServer is a private MariaDB server a test may stop and start.
type MariaDBServer struct {
	t   testing.TB
	env []string
	dir string
	// DSN is the clustergraph DSN of its database "clustergraph".
	DSN string
}

// StartMariaDB starts a MariaDB server of the test's own (its own data dir
// and port, apart from the shared one other tests use), removed at the end.
func StartMariaDB(t testing.TB) *MariaDBServer {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs MariaDB (make test)")
	}
	if os.Getenv(EnvMySQL) == "" {
		t.Fatalf("%s is not set: storage tests run against a real MariaDB; use `make test`", EnvMySQL)
	}
	dir, err := os.MkdirTemp("", "cg-mariadb")
	if err != nil {
		t.Fatal(err)
	}
	// A port outside the range mariadb.sh scans (13306-13400): while this
	// server is stopped, another run's server must not take its port.
	port, err := freePort(20000, 29999)
	if err != nil {
		t.Fatal(err)
	}
	m := &MariaDBServer{t: t, dir: dir, env: []string{"CLUSTERGRAPH_MARIADB_DIR=" + dir, "CLUSTERGRAPH_MARIADB_PORT=" + strconv.Itoa(port)}}
	out := strings.TrimSpace(scriptEnv(t, 2*time.Minute, m.env, "mariadb.sh", "up"))
	lines := strings.Split(out, "\n")
	m.DSN = "mysql://" + lines[len(lines)-1]
	t.Cleanup(func() {
		scriptEnv(t, time.Minute, m.env, "mariadb.sh", "down")
		os.RemoveAll(dir)
	})
	return m
}

// Stop shuts the server down, keeping its data.
func (m *MariaDBServer) Stop() {
	m.t.Helper()
	scriptEnv(m.t, time.Minute, m.env, "mariadb.sh", "stop")
}

// Kill kills the server with SIGKILL: a crash, with no shutdown and no
// goodbye to its clients (Start then recovers InnoDB from its log).
func (m *MariaDBServer) Kill() {
	m.t.Helper()
	b, err := os.ReadFile(filepath.Join(m.dir, "mysqld.pid"))
	if err != nil {
		m.t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		m.t.Fatalf("mysqld.pid: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		m.t.Fatalf("SIGKILL mariadbd (%d): %v", pid, err)
	}
	waitGone(m.t, pid)
}

// Start starts it again on the same port.
func (m *MariaDBServer) Start() { m.t.Helper(); scriptEnv(m.t, time.Minute, m.env, "mariadb.sh", "up") }

// freePort finds a free TCP port in [lo, hi], trying random ones.
func freePort(lo, hi int) (int, error) {
	for range 100 {
		p := lo + rand.IntN(hi-lo+1)
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err == nil {
			ln.Close()
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free port in %d-%d", lo, hi)
}
