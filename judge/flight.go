package judge

import (
	"context"
	"sync"
)

// flights lets callers that want the same answer (by cache key) at the
// same time share one upstream call instead of paying for it twice.
type flights[T any] struct {
	mu sync.Mutex
	m  map[string]*flight[T]
}

type flight[T any] struct {
	done chan struct{}
	v    T
	err  error
}

// do runs fetch for key unless a call for key is under way, in which case
// it waits for that call's result; shared reports the latter. While
// waiting, the end of ctx returns ctx.Err().
func (fs *flights[T]) do(ctx context.Context, key string, fetch func() (T, error)) (v T, shared bool, err error) {
	fs.mu.Lock()
	f, waiting := fs.m[key]
	if !waiting {
		if fs.m == nil {
			fs.m = map[string]*flight[T]{}
		}
		f = &flight[T]{done: make(chan struct{})}
		fs.m[key] = f
	}
	fs.mu.Unlock()
	if !waiting {
		f.v, f.err = fetch()
		fs.mu.Lock()
		delete(fs.m, key)
		fs.mu.Unlock()
		close(f.done)
		return f.v, false, f.err
	}
	select {
	case <-f.done:
		return f.v, true, f.err
	case <-ctx.Done():
		return v, true, ctx.Err()
	}
}
