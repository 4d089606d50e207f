package db

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	_ "github.com/ncruces/go-sqlite3/driver" // the "sqlite3" database/sql driver
)

// Spool is an outbox: records a collector could not write to the database
// wait in a table of their own in a local SQLite file, so an outage loses
// nothing. Adding appends rows (never rewriting the file), flushing hands
// them on oldest first in chunks of SpoolChunk, each removed once written,
// and past its bound the oldest rows are dropped and counted (Dropped).
// A row that does not decode is removed with its chunk and counted
// (Corrupt). What one call costs depends on the records it adds or
// flushes, not on how many wait. The counts are for the caller to log: the
// spool logs nothing itself.
type Spool[T any] struct {
	// Chunk is how many records one write of a flush gets, ChunksPerFlush
	// how many chunks one Flush hands on at most (SpoolChunk and
	// SpoolChunksPerFlush unless changed before use).
	Chunk, ChunksPerFlush int

	path string
	max  int
	db   *sql.DB

	mu      sync.Mutex
	pending int
	dropped int64
	corrupt int64
}

// SpoolChunk is how many records one write of a flush gets by default, and
// SpoolChunksPerFlush how many chunks one Flush hands on at most, so that
// catching up after a long outage is spread over ticks (100,000 records
// each) instead of one giant transaction.
const (
	SpoolChunk          = 5000
	SpoolChunksPerFlush = 20
)

// OpenSpool opens (or creates) the outbox file at path, holding at most maxRecords
// records.
func OpenSpool[T any](path string, maxRecords int) (*Spool[T], error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("spool %s: %w", path, err)
	}
	// synchronous(FULL): the outbox is where records go when nothing else
	// will take them; each commit is on disk before Add returns.
	sdb, err := sql.Open("sqlite3", sqliteDSN(path, "FULL"))
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", path, err)
	}
	sdb.SetMaxOpenConns(1)
	// AUTOINCREMENT: ids only grow, also past deleted rows, so "oldest
	// first" is "lowest id first" for the file's whole life.
	if _, err := sdb.Exec(`CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, rec BLOB NOT NULL)`); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("spool %s: %w", path, err)
	}
	s := &Spool[T]{Chunk: SpoolChunk, ChunksPerFlush: SpoolChunksPerFlush, path: path, max: maxRecords, db: sdb}
	if err := sdb.QueryRow(`SELECT COUNT(*) FROM outbox`).Scan(&s.pending); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("spool %s: %w", path, err)
	}
	return s, nil
}

// Close closes the outbox file.
func (s *Spool[T]) Close() error { return s.db.Close() }

// Add appends records in one transaction, dropping the oldest past the
// bound.
func (s *Spool[T]) Add(recs []T) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(recs) > s.max {
		s.dropped += int64(len(recs) - s.max)
		recs = recs[len(recs)-s.max:]
	}
	drop := max(s.pending+len(recs)-s.max, 0)
	err := s.tx(func(tx *sql.Tx) error {
		if drop > 0 {
			if _, err := tx.Exec(`DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)`, drop); err != nil {
				return err
			}
		}
		ins, err := tx.Prepare(`INSERT INTO outbox (rec) VALUES (?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for _, r := range recs {
			b, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if _, err := ins.Exec(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("spool %s: %w", s.path, err)
	}
	s.pending += len(recs) - drop
	s.dropped += int64(drop)
	return nil
}

// Flush hands the waiting records to write, oldest first, in chunks of at
// most Chunk rows and at most ChunksPerFlush chunks per call; each
// chunk leaves the outbox once write accepted it. Rows that do not decode
// (written by another version, or damaged) are not handed on: they leave
// with their chunk and are counted (Corrupt), and a chunk of nothing else
// leaves without a write, so such rows never hold up the ones behind them.
// Flush returns how many records were written, and stops at the first
// error (what is left waits, its undecodable rows not yet counted). write
// must be idempotent: a crash between a write and the chunk's removal
// hands the chunk on again.
func (s *Spool[T]) Flush(write func([]T) error) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	flushed := 0
	for range s.ChunksPerFlush {
		if s.pending == 0 {
			break
		}
		c, err := s.oldest(s.Chunk)
		if err != nil {
			return flushed, fmt.Errorf("spool %s: %w", s.path, err)
		}
		if c.rows == 0 {
			s.pending = 0 // the count was ahead of the file
			break
		}
		if len(c.recs) > 0 {
			if err := write(c.recs); err != nil {
				return flushed, err
			}
		}
		res, err := s.db.Exec(`DELETE FROM outbox WHERE id <= ?`, c.last)
		if err != nil {
			return flushed, fmt.Errorf("spool %s: %w", s.path, err)
		}
		n, _ := res.RowsAffected()
		s.pending = max(s.pending-int(n), 0)
		s.corrupt += int64(c.corrupt)
		flushed += len(c.recs)
	}
	return flushed, nil
}

// chunk is what oldest read: rows rows up to id last, the records that
// decoded, and how many did not.
type chunk[T any] struct {
	last          int64
	rows, corrupt int
	recs          []T
}

// oldest reads up to n rows, oldest first. A row that does not decode is
// counted in the chunk's corrupt, not returned.
func (s *Spool[T]) oldest(n int) (chunk[T], error) {
	var c chunk[T]
	rows, err := s.db.Query(`SELECT id, rec FROM outbox ORDER BY id LIMIT ?`, n)
	if err != nil {
		return c, err
	}
	defer rows.Close()
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&c.last, &b); err != nil {
			return chunk[T]{}, err
		}
		c.rows++
		var r T
		if json.Unmarshal(b, &r) != nil {
			c.corrupt++
			continue
		}
		c.recs = append(c.recs, r)
	}
	return c, rows.Err()
}

func (s *Spool[T]) tx(f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(context.Background(), nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Len is how many records wait.
func (s *Spool[T]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending
}

// Dropped is how many records the bound has cost since the spool was
// opened.
func (s *Spool[T]) Dropped() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// Corrupt is how many rows Flush removed since the spool was opened
// because they did not decode.
func (s *Spool[T]) Corrupt() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.corrupt
}

// Bound is how many records the spool holds at most.
func (s *Spool[T]) Bound() int { return s.max }

// ImportJSONL moves the records of a spool file of earlier versions (JSON
// lines) into the outbox and removes the file. It returns how many records
// it moved and how many lines it skipped as unreadable (torn by a crash
// mid-write). A missing file is no error.
func (s *Spool[T]) ImportJSONL(path string) (moved int, torn int64, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("spool %s: %w", path, err)
	}
	defer f.Close()
	var recs []T
	br := bufio.NewReader(f)
	for {
		line, rerr := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var r T
			if json.Unmarshal(line, &r) == nil {
				recs = append(recs, r)
			} else {
				torn++
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return 0, torn, fmt.Errorf("spool %s: %w", path, rerr)
		}
	}
	if err := s.Add(recs); err != nil {
		return 0, torn, err
	}
	return len(recs), torn, os.Remove(path)
}
