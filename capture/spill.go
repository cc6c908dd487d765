package capture

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/foundryhq/foundry/store"
)

// spill is the JSONL overflow file: one store.Record per line, appended and
// fsynced, replayed into the store at the next start. Replays are idempotent
// because InsertRecords keeps the first copy of an ID.
type spill struct {
	path string
	mu   sync.Mutex
}

func (s *spill) write(recs []store.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(s.path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(s.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for i := range recs {
		if err := enc.Encode(&recs[i]); err != nil {
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

// replay moves the spill file aside, inserts its records and removes it. It
// returns the records replayed and the lines that could not be decoded (a
// line torn by a crash mid-write).
func (s *spill) replay(ctx context.Context, st store.Store, batch int) (n, bad int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pending, _ := filepath.Glob(s.path + ".replay-*")
	if _, err := os.Stat(s.path); err == nil {
		moved := fmt.Sprintf("%s.replay-%d", s.path, os.Getpid())
		if err := os.Rename(s.path, moved); err != nil {
			return 0, 0, err
		}
		pending = append(pending, moved)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, 0, err
	}
	for _, p := range pending {
		m, b, err := replayFile(ctx, st, p, batch)
		n, bad = n+m, bad+b
		if err != nil {
			return n, bad, err
		}
		if err := os.Remove(p); err != nil {
			return n, bad, err
		}
	}
	return n, bad, nil
}

func replayFile(ctx context.Context, st store.Store, path string, batch int) (n, bad int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	recs := make([]store.Record, 0, batch)
	put := func() error {
		if len(recs) == 0 {
			return nil
		}
		if err := st.InsertRecords(ctx, recs); err != nil {
			return err
		}
		n += len(recs)
		recs = recs[:0]
		return nil
	}
	for sc.Scan() {
		var r store.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.ID == "" {
			bad++
			continue
		}
		recs = append(recs, r)
		if len(recs) >= batch {
			if err := put(); err != nil {
				return n, bad, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return n, bad, err
	}
	return n, bad, put()
}
