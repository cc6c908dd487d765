// Package route serves routes: model names apps call (e.g. "support-bot")
// whose traffic a versioned Policy spreads over models — a weighted canary,
// sticky per user, with a fallback chain, shadow mirroring, a cascade that
// escalates to the teacher when a validator fails, and automatic rollback
// when a candidate's live quality drops.
//
// A Router is provider.Middleware around the gateway's innermost invoker: it
// picks the model for a call and calls on with c.Route set to it, so retries
// and the gateway's per-model fallbacks apply to every target. Policies live
// in the store (one version per change, the history is the audit log); each
// replica reloads them periodically, and a policy is validated before it is
// stored, so live traffic keeps the last good one.
//
// Every record of a routed call carries metadata route=<name>,
// route.version and route.arm. Shadow and escalated candidate calls are
// recorded as their own records with ParentID set to the client's request.
//
// Streaming: a cascade candidate is always asked without streaming; its
// answer is validated, then replayed to a streaming client as chunks (so
// the client's first token waits for the whole candidate answer), while an
// escalation streams from the teacher directly. Shadow copies of streaming
// requests are sent without streaming. Validators read the first choice.
//
// testdata/support-bot.yaml is a documented example policy.
package route

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/provider"
	"github.com/foundryhq/foundry/store"
)

// Recorder records a finished call (capture.Capturer is one). It must not block.
type Recorder interface {
	PostCall(ctx context.Context, c *provider.Call)
}

// Agree compares a shadow's answer with the primary's (an LLM judge, exact
// match...); its verdicts feed the shadow target's agreement rate.
type Agree func(ctx context.Context, req *api.ChatRequest, primary, shadow *api.ChatResponse) (bool, error)

// Options configure a Router. Zero values mean the defaults in parentheses.
type Options struct {
	Store    store.Store // required
	Resolve  Resolver    // checks target models when a policy is put; nil accepts any name
	Recorder Recorder    // records shadow and escalated candidate calls; nil drops them
	Agree    Agree       // optional shadow-judge

	Reload        time.Duration // how often policies are reloaded and rollback bars checked (5s)
	ShadowQueue   int           // mirrored requests waiting for a worker; more are dropped and counted (256)
	ShadowWorkers int           // concurrent shadow calls (4)
	ShadowTimeout time.Duration // longest shadow call (2m)
	Logger        *slog.Logger
}

// Router holds the live policies. Create it with New; Start loads them.
type Router struct {
	opts Options
	log  *slog.Logger

	mu     sync.RWMutex
	routes map[string]*state

	shadowQ   chan shadowJob
	closeOnce sync.Once
	stop      chan struct{}
	wg        sync.WaitGroup
	started   bool
	ctx       context.Context // shadow calls run under it, detached from clients
}

// state is one route's live policy and its counters (reset on a new version).
type state struct {
	c       *compiled
	loadErr string // the newest stored version failed to load; c is the last good one
	stuck   bool   // a rollback bar was crossed on version 1: logged once
	mu      sync.Mutex
	arms    map[string]*armStats
}

// New returns a router; call Start to load policies and run it.
func New(opts Options) *Router {
	if opts.Reload <= 0 {
		opts.Reload = 5 * time.Second
	}
	if opts.ShadowQueue <= 0 {
		opts.ShadowQueue = 256
	}
	if opts.ShadowWorkers <= 0 {
		opts.ShadowWorkers = 4
	}
	if opts.ShadowTimeout <= 0 {
		opts.ShadowTimeout = 2 * time.Minute
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Router{opts: opts, log: log, routes: map[string]*state{}, shadowQ: make(chan shadowJob, opts.ShadowQueue),
		stop: make(chan struct{}), ctx: context.Background()}
}

// Start loads the stored policies, then reloads them every Options.Reload
// (checking rollback bars each time) and runs the shadow workers until
// Close or ctx ends.
func (r *Router) Start(ctx context.Context) error {
	if err := r.Sync(ctx); err != nil {
		return err
	}
	r.started = true
	r.ctx = context.WithoutCancel(ctx)
	for range r.opts.ShadowWorkers {
		r.wg.Add(1)
		go r.shadowWorker()
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(r.opts.Reload)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-r.stop:
				return
			case <-t.C:
				if err := r.Sync(ctx); err != nil && ctx.Err() == nil {
					r.log.Warn("route: reload policies", "err", err)
				}
			}
		}
	}()
	return nil
}

// Close stops reloading and waits for queued shadow calls to finish (or ctx
// to end). Close the recorder after it, so their records are written.
func (r *Router) Close(ctx context.Context) error {
	r.closeOnce.Do(func() { close(r.stop) })
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("route: shadow calls still running at close: %w", ctx.Err())
	}
}

// Sync reloads every route's newest policy from the store (a version that
// fails to load is logged and the last good one kept), then checks the
// rollback bars. Start calls it periodically; tests call it directly.
func (r *Router) Sync(ctx context.Context) error {
	list, err := r.opts.Store.ListRoutes(ctx)
	if err != nil {
		return fmt.Errorf("route: load policies: %w", err)
	}
	for _, rv := range list {
		r.load(rv)
	}
	var errs []error
	for _, rv := range list {
		if err := r.checkRollback(ctx, rv.Name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// load makes rv live unless it is already, or it does not compile (then the
// last good version stays live).
func (r *Router) load(rv store.RouteVersion) {
	r.mu.RLock()
	cur := r.routes[rv.Name]
	r.mu.RUnlock()
	if cur != nil && cur.c.version == rv.Version {
		return
	}
	p, err := ParsePolicy(rv.Policy)
	var c *compiled
	if err == nil {
		// Models are checked when a policy is put; here an unresolvable one
		// fails per call (and falls back), instead of dropping the route.
		c, err = compile(context.Background(), rv.Name, rv.Version, p, nil)
	}
	if c != nil {
		c.since = rv.CreatedAt.Add(-time.Second) // records are stamped at arrival, a little before
	}
	if err != nil {
		msg := fmt.Sprintf("version %d does not load: %v", rv.Version, err)
		r.log.Error("route: policy does not load; serving the last good version", "route", rv.Name, "version", rv.Version, "err", err)
		r.mu.Lock()
		if cur != nil {
			cur.mu.Lock()
			cur.loadErr = msg
			cur.mu.Unlock()
		}
		r.mu.Unlock()
		return
	}
	r.mu.Lock()
	if old := r.routes[rv.Name]; old == nil || old.c.version < rv.Version {
		r.routes[rv.Name] = &state{c: c, arms: map[string]*armStats{}}
		r.log.Info("route: policy loaded", "route", rv.Name, "version", rv.Version)
	}
	r.mu.Unlock()
}

func (r *Router) lookup(name string) *state {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.routes[name]
}

// Change is who changes a route and why, for the audit history.
type Change struct {
	Actor   string
	Comment string
	// IfVersion, when set, is the version the change was based on: the
	// change is refused (store.ErrConflict) when the route moved on since.
	IfVersion *int
}

// Put validates policy (YAML or JSON) for route name and stores it as the
// route's next version; this router serves it at once, other replicas at
// their next reload. An invalid policy is refused with a *PolicyError and
// nothing changes.
func (r *Router) Put(ctx context.Context, name string, policy []byte, ch Change) (store.RouteVersion, error) {
	if err := checkName(name); err != nil {
		return store.RouteVersion{}, err
	}
	p, err := ParsePolicy(policy)
	if err != nil {
		return store.RouteVersion{}, &PolicyError{Route: name, Problems: []string{err.Error()}}
	}
	if _, err := compile(ctx, name, 0, p, r.opts.Resolve); err != nil {
		return store.RouteVersion{}, err
	}
	canonical, err := json.Marshal(p)
	if err != nil {
		return store.RouteVersion{}, fmt.Errorf("encode policy for route %q: %w", name, err)
	}
	return r.putVersion(ctx, name, canonical, ch)
}

func (r *Router) putVersion(ctx context.Context, name string, policy json.RawMessage, ch Change) (store.RouteVersion, error) {
	next := 1
	cur, err := r.opts.Store.GetRoute(ctx, name)
	switch {
	case err == nil:
		next = cur.Version + 1
	case !errors.Is(err, store.ErrNotFound):
		return store.RouteVersion{}, err
	}
	if ch.IfVersion != nil && *ch.IfVersion != next-1 {
		return store.RouteVersion{}, fmt.Errorf("route %q is at version %d, not %d: %w (reload it and apply your change again)", name, next-1, *ch.IfVersion, store.ErrConflict)
	}
	rv := store.RouteVersion{Name: name, Version: next, Policy: policy, Actor: ch.Actor, Comment: ch.Comment, CreatedAt: time.Now().UTC()}
	if err := r.opts.Store.PutRoute(ctx, rv); err != nil {
		return store.RouteVersion{}, err
	}
	r.load(rv)
	return rv, nil
}

// Rollback stores the policy of version to (0: the version before the
// latest) as the route's next version, audited with ch.
func (r *Router) Rollback(ctx context.Context, name string, to int, ch Change) (store.RouteVersion, error) {
	hist, err := r.opts.Store.RouteHistory(ctx, name)
	if err != nil {
		return store.RouteVersion{}, err
	}
	cur := hist[len(hist)-1]
	if ch.IfVersion != nil && *ch.IfVersion != cur.Version {
		return store.RouteVersion{}, fmt.Errorf("route %q is at version %d, not %d: %w", name, cur.Version, *ch.IfVersion, store.ErrConflict)
	}
	if to == 0 {
		to = cur.Version - 1
	}
	if to < 1 || to >= cur.Version {
		return store.RouteVersion{}, &PolicyError{Route: name, Problems: []string{fmt.Sprintf(
			"cannot roll back to version %d: the route has versions 1 to %d and the latest is live (pick an earlier one)", to, cur.Version)}}
	}
	prev := hist[to-1]
	comment := fmt.Sprintf("rollback from version %d to version %d", cur.Version, to)
	if ch.Comment != "" {
		comment += ": " + ch.Comment
	}
	v := cur.Version
	return r.putVersion(ctx, name, prev.Policy, Change{Actor: ch.Actor, Comment: comment, IfVersion: &v})
}

func checkName(name string) error {
	if name == "" {
		return &PolicyError{Route: name, Problems: []string{"the route name is empty"}}
	}
	for _, ch := range name {
		if ch <= ' ' || ch == '/' || ch == '?' || ch == '#' || ch == '%' {
			return &PolicyError{Route: name, Problems: []string{"a route name may not contain spaces, control characters or / ? # %"}}
		}
	}
	return nil
}

// newID returns a request id in the gateway's format, for shadow and candidate calls.
func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "req_" + hex.EncodeToString(b[:])
}

// label stamps the route's metadata on a call; "route" keys the client sent
// are dropped, so records cannot pose as another route's (rollback reads them).
func label(c *provider.Call, cp *compiled, arm string) {
	if c.Metadata == nil {
		c.Metadata = map[string]string{}
	}
	for k := range c.Metadata {
		if k == "route" || strings.HasPrefix(k, "route.") {
			delete(c.Metadata, k)
		}
	}
	c.Metadata["route"] = cp.name
	c.Metadata["route.version"] = strconv.Itoa(cp.version)
	c.Metadata["route.arm"] = arm
}
