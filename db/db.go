package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/ncruces/go-sqlite3/gormlite"
	"gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/clustergraph/clustergraph/errkind"
)

// ErrUnavailable means the database could not be reached or failed. It is of
// kind errkind.Unavailable; its own name lets callers tell a database
// outage from a cluster's. Bad arguments and missing records are plain
// errkind.BadInput and errkind.NotFound.
var ErrUnavailable = errkind.Newf(errkind.Unavailable, "database unavailable")

// Dialect names the database behind a Store.
type Dialect string

// The supported dialects.
const (
	MySQL  Dialect = "mysql"
	SQLite Dialect = "sqlite"
)

// Store is the database: every method takes the caller's context and
// returns errors wrapping this package's sentinels.
type Store struct {
	gdb     *gorm.DB
	sqlDB   *sql.DB
	dialect Dialect
	log     *slog.Logger
	// where is the DSN without its password, for logs and errors.
	where string
}

// Options tune Open.
type Options struct {
	// Log receives migration progress; default slog.Default().
	Log *slog.Logger
	// ConnectTimeout bounds the first connection and the migrations; default 30s.
	ConnectTimeout time.Duration
}

// Open connects to the database named by dsn and applies the migrations.
//
//	mysql://user:pass@tcp(host:3306)/dbname?params   MySQL or MariaDB
//	sqlite:///var/lib/clustergraph/clustergraph.db    SQLite file (created)
//	sqlite::memory:                                   SQLite in memory (tests)
//
// A MySQL DSN gets parseTime, utf8mb4 and UTC added when it does not set them.
func Open(ctx context.Context, dsn string, o Options) (*Store, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 30 * time.Second
	}
	s := &Store{log: o.Log}
	var dialector gorm.Dialector
	switch {
	case strings.HasPrefix(dsn, "mysql://"):
		quietDriver()
		cfg, err := gomysql.ParseDSN(strings.TrimPrefix(dsn, "mysql://"))
		if err != nil {
			return nil, fmt.Errorf("%w: database DSN: %v", errkind.BadInput, err)
		}
		cfg.ParseTime = true
		cfg.Loc = time.UTC
		if cfg.Params == nil {
			cfg.Params = map[string]string{}
		}
		if _, ok := cfg.Params["charset"]; !ok {
			cfg.Params["charset"] = "utf8mb4"
		}
		if cfg.Timeout == 0 {
			cfg.Timeout = 5 * time.Second
		}
		s.dialect = MySQL
		s.where = "mysql://" + cfg.User + "@" + cfg.Addr + "/" + cfg.DBName
		dialector = mysql.New(mysql.Config{DSNConfig: cfg})
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "//")
		if path == "" {
			return nil, fmt.Errorf("%w: database DSN %q names no file", errkind.BadInput, dsn)
		}
		if path != ":memory:" {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
			}
		}
		s.dialect = SQLite
		s.where = "sqlite:" + path
		dialector = gormlite.Open(sqliteDSN(path, "NORMAL"))
	default:
		return nil, fmt.Errorf("%w: database DSN must start with mysql:// or sqlite: (got %q)", errkind.BadInput, redact(dsn))
	}
	gdb, err := gorm.Open(dialector, &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		return nil, fmt.Errorf("%w: opening %s: %v", ErrUnavailable, s.where, err)
	}
	if err := gdb.Use(tracingPlugin{system: string(s.dialect)}); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if err := gdb.Use(statementMetrics{}); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	s.gdb = gdb
	if s.sqlDB, err = gdb.DB(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if s.dialect == SQLite {
		// One connection: SQLite has one writer, and an in-memory
		// database exists per connection.
		s.sqlDB.SetMaxOpenConns(1)
	} else {
		s.sqlDB.SetMaxOpenConns(16)
		s.sqlDB.SetMaxIdleConns(4)
		s.sqlDB.SetConnMaxLifetime(5 * time.Minute)
	}
	cctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	defer cancel()
	if err := s.sqlDB.PingContext(cctx); err != nil {
		s.sqlDB.Close()
		return nil, fmt.Errorf("%w: connecting to %s: %v", ErrUnavailable, s.where, err)
	}
	if err := s.migrate(cctx); err != nil {
		s.sqlDB.Close()
		return nil, err
	}
	return s, nil
}

// sqliteTimeFormat is how the SQLite driver writes a time.Time: exactly as
// the engine clustergraph embedded before (github.com/glebarez/go-sqlite on
// modernc.org/sqlite) wrote it, so existing files and new rows agree. This
// package keeps times as Unix seconds (see doc.go) and binds no time.Time
// today; the pin is for one that ever reaches SQLite, whose comparisons and
// ORDER BY would compare text: ncruces/go-sqlite3's own default, RFC 3339
// ("2006-01-02T15:04:05.999999999Z"), sorts apart from the old
// "2006-01-02 15:04:05.999999999+00:00". DATE, DATETIME and TIMESTAMP
// columns are decoded with this layout only (the old engine also accepted
// RFC 3339 and zone-less text, which nothing here ever wrote); other text
// stays text.
const sqliteTimeFormat = "2006-01-02 15:04:05.999999999-07:00"

// sqliteDSN is the github.com/ncruces/go-sqlite3 data source name for the
// database file at path, or for a private in-memory database with path
// ":memory:" (one per connection, so one per Store: Open keeps a single
// connection). The driver runs each "_pragma" in order on every new
// connection and writes times in "_timefmt"; SQLite ignores both. Its
// transactions BEGIN IMMEDIATE: a writer takes the write lock up front,
// waiting busy_timeout for it, where a deferred one could fail with
// SQLITE_BUSY on upgrading from reading. synchronous is NORMAL (the store)
// or FULL (the metering outbox, see Spool).
func sqliteDSN(path, synchronous string) string {
	q := url.Values{}
	// busy_timeout first, as the driver advises, so that switching to WAL
	// already waits for a busy file: a second writer (another process on
	// the file, say) waits up to 10s instead of failing. WAL lets readers
	// run beside the one writer; with WAL, synchronous=NORMAL may lose the
	// last commits to a power cut but never corrupts the file.
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+synchronous+")")
	q.Set("_timefmt", sqliteTimeFormat)
	// SQLite percent-decodes a URI's path and ends it at '?' or '#':
	// escaped, a directory named "a#b" holds the file instead of the
	// file landing at "a" without these parameters.
	path = strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(path)
	return "file:" + path + "?" + q.Encode()
}

// Close closes the connections.
func (s *Store) Close() error { return s.sqlDB.Close() }

// Dialect tells which database this is.
func (s *Store) Dialect() Dialect { return s.dialect }

// String names the database without credentials.
func (s *Store) String() string { return s.where }

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrUnavailable, s.where, err)
	}
	return nil
}

// wrap translates a database error at the package boundary.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return fmt.Errorf("%s: %w", op, errkind.NotFound)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s on %s: %w: %v", op, s.where, ErrUnavailable, err)
}

// redact hides a password in a DSN.
func redact(dsn string) string {
	if at := strings.LastIndex(dsn, "@"); at > 0 {
		if colon := strings.Index(dsn[:at], ":"); colon >= 0 {
			if slash := strings.Index(dsn, "://"); slash >= 0 && colon == slash {
				if c2 := strings.Index(dsn[slash+3:at], ":"); c2 >= 0 {
					return dsn[:slash+3+c2+1] + "***" + dsn[at:]
				}
				return dsn
			}
			return dsn[:colon+1] + "***" + dsn[at:]
		}
	}
	return dsn
}

// quietDriver sends go-sql-driver/mysql's own log lines (a stale pooled
// connection after a server restart, say) to slog at debug level: the pool
// retries on a fresh connection, so they are not errors.
var quietDriver = sync.OnceFunc(func() {
	_ = gomysql.SetLogger(driverLog{})
})

type driverLog struct{}

func (driverLog) Print(v ...any) { slog.Debug("mysql driver", "msg", fmt.Sprint(v...)) }
