package db

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// Spool keeps records on disk while the database is down, so a collector
// loses nothing to an outage. It is bounded: past MaxRecords the oldest
// records are dropped (and counted), never memory or disk without end.
// Records are JSON lines in one file; a flush that fails keeps them all,
// and a line torn by a crash is skipped (and counted) without the rest.
type Spool[T any] struct {
	path string
	max  int

	mu      sync.Mutex
	pending int
	dropped int64
	// torn counts unreadable lines skipped (a crash mid-write).
	torn int64
}

// OpenSpool opens (or creates) the spool file at path, holding at most max records.
func OpenSpool[T any](path string, max int) (*Spool[T], error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("spool %s: %w", path, err)
	}
	s := &Spool[T]{path: path, max: max}
	recs, err := s.read()
	if err != nil {
		return nil, err
	}
	s.pending = len(recs)
	return s, nil
}

// Add appends records, dropping the oldest past the bound.
func (s *Spool[T]) Add(recs []T) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending+len(recs) > s.max {
		all, err := s.read()
		if err != nil {
			return err
		}
		all = append(all, recs...)
		drop := len(all) - s.max
		s.dropped += int64(drop)
		return s.rewrite(all[drop:])
	}
	f, err := os.OpenFile(s.path, os.O_CREATE|os.O_APPEND|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("spool %s: %w", s.path, err)
	}
	// A line torn by a crash mid-write is ended first, so the records
	// added now start a line of their own and are not lost with it.
	if err := endTornLine(f); err != nil {
		f.Close()
		return fmt.Errorf("spool %s: %w", s.path, err)
	}
	if err := writeRecords(f, recs); err != nil {
		return fmt.Errorf("spool %s: %w", s.path, err)
	}
	s.pending += len(recs)
	return nil
}

// endTornLine writes a newline when the file does not end with one.
func endTornLine(f *os.File) error {
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return err
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, st.Size()-1); err != nil {
		return err
	}
	if last[0] == '\n' {
		return nil
	}
	_, err = f.Write([]byte{'\n'})
	return err
}

// writeRecords appends recs as JSON lines, syncs and closes f.
func writeRecords[T any](f *os.File, recs []T) error {
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Flush hands every spooled record to write in one call and empties the
// spool when write succeeds. write must be idempotent: a crash between
// write and truncation replays the records.
func (s *Spool[T]) Flush(write func([]T) error) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == 0 {
		return 0, nil
	}
	recs, err := s.read()
	if err != nil {
		return 0, err
	}
	if err := write(recs); err != nil {
		return 0, err
	}
	s.pending = 0
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return len(recs), fmt.Errorf("spool %s: %w", s.path, err)
	}
	return len(recs), nil
}

// Len is how many records wait.
func (s *Spool[T]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending
}

// Dropped is how many records the bound has cost since start.
func (s *Spool[T]) Dropped() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

func (s *Spool[T]) read() ([]T, error) {
	f, err := os.Open(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", s.path, err)
	}
	defer f.Close()
	var out []T
	var torn int64
	br := bufio.NewReader(f)
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			// A line torn by a crash mid-write is skipped and counted;
			// the records around it are kept.
			var r T
			if json.Unmarshal(line, &r) == nil {
				out = append(out, r)
			} else {
				torn++
			}
		}
		if errors.Is(err, io.EOF) {
			s.torn = torn
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("spool %s: %w", s.path, err)
		}
	}
}

// Torn is how many unreadable lines (torn by a crash mid-write) the
// last read of the spool skipped.
func (s *Spool[T]) Torn() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.torn
}

func (s *Spool[T]) rewrite(recs []T) error {
	tmp := s.path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("spool %s: %w", s.path, err)
	}
	if err := writeRecords(f, recs); err != nil {
		return fmt.Errorf("spool %s: %w", s.path, err)
	}
	s.pending = len(recs)
	return os.Rename(tmp, s.path)
}
