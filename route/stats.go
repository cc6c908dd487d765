package route

import (
	"sort"
	"sync"
	"sync/atomic"
)

// Stats are one route's live numbers on this replica, for its current version.
type Stats struct {
	Route     string             `json:"route"`
	Version   int                `json:"version"`
	Shares    map[string]float64 `json:"shares_percent"` // each arm's configured share of traffic
	LoadError string             `json:"load_error,omitempty"`
	Arms      []ArmStats         `json:"arms"`
}

// ArmStats count one arm's (or shadow target's) calls since its version went live.
type ArmStats struct {
	Arm           string   `json:"arm"`
	Model         string   `json:"model"`
	Shadow        bool     `json:"shadow,omitempty"`
	Requests      int64    `json:"requests"`
	Errors        int64    `json:"errors"`
	Escalations   int64    `json:"escalations"`
	ShadowSent    int64    `json:"shadow_sent,omitempty"`
	ShadowDropped int64    `json:"shadow_dropped,omitempty"` // the shadow queue was full
	ShadowErrors  int64    `json:"shadow_errors,omitempty"`
	PassRate      *Quality `json:"pass_rate,omitempty"`     // validator pass rate over the rolling window
	Agreement     *Quality `json:"agreement,omitempty"`     // shadow-judge agreement over the rolling window
	Feedback      *Quality `json:"feedback_mean,omitempty"` // mean feedback score, as of the last check
}

// Quality is a rolling signal: its value over the last N observations.
type Quality struct {
	Value float64 `json:"value"`
	N     int     `json:"n"`
}

type armStats struct {
	model  string
	shadow bool

	requests, errors, escalations, shadowSent, shadowDropped, shadowErrors atomic.Int64

	mu       sync.Mutex
	pass     window
	agree    window
	feedback *Quality
}

// window is a ring of the last len(buf) pass/fail observations.
type window struct {
	buf       []bool
	next, n   int
	positives int
}

func (w *window) add(ok bool) {
	if w.n == len(w.buf) {
		if w.buf[w.next] {
			w.positives--
		}
	} else {
		w.n++
	}
	w.buf[w.next] = ok
	if ok {
		w.positives++
	}
	w.next = (w.next + 1) % len(w.buf)
}

func (w *window) quality() *Quality {
	if w.n == 0 {
		return nil
	}
	return &Quality{Value: float64(w.positives) / float64(w.n), N: w.n}
}

// arm returns the counters of arm name, creating them.
func (st *state) arm(name, model string) *armStats {
	st.mu.Lock()
	defer st.mu.Unlock()
	a := st.arms[name]
	if a == nil {
		size := DefaultWindow
		if st.c.Rollback != nil {
			size = st.c.Rollback.Window
		}
		a = &armStats{model: model, pass: window{buf: make([]bool, size)}, agree: window{buf: make([]bool, size)}}
		st.arms[name] = a
	}
	return a
}

func (st *state) observePass(name, model string, ok bool) {
	a := st.arm(name, model)
	a.mu.Lock()
	a.pass.add(ok)
	a.mu.Unlock()
}

func (st *state) observeAgree(name string, ok bool) {
	a := st.arm(name, name)
	a.mu.Lock()
	a.agree.add(ok)
	a.mu.Unlock()
}

// Stats returns route name's live numbers; false when it is not loaded.
func (r *Router) Stats(name string) (Stats, bool) {
	st := r.lookup(name)
	if st == nil {
		return Stats{}, false
	}
	for _, a := range st.c.Arms {
		st.arm(a.Name, a.Model)
	}
	st.mu.Lock()
	out := Stats{Route: name, Version: st.c.version, Shares: st.c.shares(), LoadError: st.loadErr}
	for name, a := range st.arms {
		a.mu.Lock()
		s := ArmStats{Arm: name, Model: a.model, Shadow: a.shadow, Requests: a.requests.Load(), Errors: a.errors.Load(),
			Escalations: a.escalations.Load(), ShadowSent: a.shadowSent.Load(), ShadowDropped: a.shadowDropped.Load(),
			ShadowErrors: a.shadowErrors.Load(), PassRate: a.pass.quality(), Agreement: a.agree.quality(), Feedback: a.feedback}
		a.mu.Unlock()
		out.Arms = append(out.Arms, s)
	}
	st.mu.Unlock()
	sort.Slice(out.Arms, func(i, j int) bool {
		if out.Arms[i].Shadow != out.Arms[j].Shadow {
			return !out.Arms[i].Shadow
		}
		return out.Arms[i].Arm < out.Arms[j].Arm
	})
	return out, true
}
