package route

import (
	"context"
	"math/rand/v2"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/provider"
)

// shadowJob is one mirrored request waiting for a worker.
type shadowJob struct {
	st      *state
	target  string
	call    *provider.Call
	next    provider.Invoker
	primary *api.ChatResponse // nil for streams: no agreement check
}

// mirror queues a copy of c for each shadow target without waiting: when
// the queue is full the copy is dropped and counted. Streaming requests are
// mirrored as non-streaming ones.
func (r *Router) mirror(c *provider.Call, st *state, next provider.Invoker, primary *api.ChatResponse) {
	sh := st.c.Shadow
	if sh == nil || c.Chat == nil || (sh.Sample != nil && rand.Float64() >= *sh.Sample) {
		return
	}
	for _, t := range sh.Targets {
		req := *c.Chat
		req.Stream, req.StreamOptions = false, nil
		sc := child(c, &req)
		sc.Tags = append(sc.Tags, "shadow")
		delete(sc.Metadata, "route.escalated")
		delete(sc.Metadata, "route.escalation_reason")
		delete(sc.Metadata, "route.escalated_from")
		sc.Metadata["route.arm"] = t
		sc.Metadata["route.shadow"] = "true"
		a := st.arm(t, t)
		a.mu.Lock()
		a.shadow = true
		a.mu.Unlock()
		select {
		case r.shadowQ <- shadowJob{st: st, target: t, call: sc, next: next, primary: primary}:
			a.shadowSent.Add(1)
		default:
			a.shadowDropped.Add(1)
		}
	}
}

// shadowWorker runs queued shadow calls until Close, then drains the queue.
func (r *Router) shadowWorker() {
	defer r.wg.Done()
	for {
		select {
		case j := <-r.shadowQ:
			r.runShadow(j)
		case <-r.stop:
			for {
				select {
				case j := <-r.shadowQ:
					r.runShadow(j)
				default:
					return
				}
			}
		}
	}
}

func (r *Router) runShadow(j shadowJob) {
	ctx, cancel := context.WithTimeout(r.ctx, r.opts.ShadowTimeout)
	defer cancel()
	sc := j.call
	sc.Route = j.target
	resp, err := j.next.Chat(ctx, sc)
	finishChild(sc, j.st.c.name, resp, err)
	a := j.st.arm(j.target, j.target)
	if err != nil {
		a.shadowErrors.Add(1)
		r.log.Debug("route: shadow call failed", "route", j.st.c.name, "target", j.target, "parent", sc.ParentID, "err", err)
	}
	if r.opts.Recorder != nil {
		r.opts.Recorder.PostCall(r.ctx, sc)
	}
	if err == nil && r.opts.Agree != nil && j.primary != nil {
		ok, err := r.opts.Agree(ctx, sc.Chat, j.primary, resp)
		if err != nil {
			r.log.Warn("route: shadow judge failed", "route", j.st.c.name, "target", j.target, "err", err)
			return
		}
		j.st.observeAgree(j.target, ok)
	}
}
