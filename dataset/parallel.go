package dataset

import (
	"context"
	"sync"
)

// orderedBatch is how many items orderedMap hands a worker at once, so the
// channel and allocation cost is paid per batch, not per row.
const orderedBatch = 64

// orderedMap calls f on every item produce sends, on workers goroutines, and
// emit on the results in the order the items were sent. emit runs on the
// caller's goroutine. Items go to workers batch at a time (orderedBatch when
// batch <= 0). The first error (from produce or emit) stops the rest.
func orderedMap[T, R any](ctx context.Context, workers, batchSize int, produce func(send func(T) error) error, f func(T) R, emit func(R) error) error {
	type batch struct {
		in   []T
		out  []R
		done chan struct{}
	}
	if batchSize <= 0 {
		batchSize = orderedBatch
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan *batch, workers*2)
	order := make(chan *batch, workers*8)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range jobs {
				b.out = make([]R, len(b.in))
				for i, x := range b.in {
					b.out[i] = f(x)
				}
				close(b.done)
			}
		}()
	}
	prodErr := make(chan error, 1)
	go func() {
		cur := &batch{in: make([]T, 0, batchSize), done: make(chan struct{})}
		flush := func() error {
			if len(cur.in) == 0 {
				return nil
			}
			select {
			case order <- cur:
			case <-ctx.Done():
				return ctx.Err()
			}
			jobs <- cur
			cur = &batch{in: make([]T, 0, batchSize), done: make(chan struct{})}
			return nil
		}
		err := produce(func(x T) error {
			cur.in = append(cur.in, x)
			if len(cur.in) == batchSize {
				return flush()
			}
			return nil
		})
		if err == nil {
			err = flush()
		}
		close(jobs)
		close(order)
		prodErr <- err
	}()
	var emitErr error
	for b := range order {
		<-b.done
		for _, r := range b.out {
			if emitErr != nil {
				break
			}
			if emitErr = emit(r); emitErr != nil {
				cancel()
			}
		}
	}
	wg.Wait()
	perr := <-prodErr
	if emitErr != nil {
		return emitErr
	}
	return perr
}
