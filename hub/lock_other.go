//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package hub

import (
	"context"
	"sync"
)

var (
	locksMu sync.Mutex
	locks   = map[string]chan struct{}{}
)

// fileLock serialises downloads of one blob within this process only, on
// platforms without flock(2).
func fileLock(ctx context.Context, path string) (unlock func(), err error) {
	for {
		locksMu.Lock()
		ch, busy := locks[path]
		if !busy {
			ch = make(chan struct{})
			locks[path] = ch
			locksMu.Unlock()
			return func() {
				locksMu.Lock()
				delete(locks, path)
				locksMu.Unlock()
				close(ch)
			}, nil
		}
		locksMu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ch:
		}
	}
}
