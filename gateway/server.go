// Package gateway is Foundry's HTTP server: the OpenAI-compatible surface
// (/v1/chat/completions with SSE, /v1/models, /v1/embeddings), the
// management API under /api/v1, auth with virtual keys and an admin key,
// body limits, retries and fallbacks, and Prometheus metrics. Cross-cutting
// work (capture, cost, routing) is not done in handlers: it runs as
// provider.Plugin hooks and provider.Middleware around the provider call.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/provider"
	"github.com/foundryhq/foundry/store"
)

// Options configure a Server. Zero values mean the defaults in parentheses.
type Options struct {
	Registry   *provider.Registry // required
	Store      store.Store        // keys, management API and feedback; nil disables those
	Plugins    []provider.Plugin  // run around every call, in order (PostCall in reverse)
	Middleware []provider.Middleware
	// Fallbacks map a model name to names tried in order after it fails with a retryable error.
	Fallbacks map[string][]string
	AdminKey  string // required for /api/*; "" with no virtual keys means open (loopback only)

	MaxBodyBytes int64         // request body limit (16 MiB)
	MaxRetries   int           // retries per target on 429/5xx/connection errors (2; -1 for none)
	RetryBase    time.Duration // first backoff (100ms), doubled per retry, jittered
	RetryMax     time.Duration // longest backoff or Retry-After honoured (10s)

	// Flusher, when set, is flushed before a feedback lookup misses, so
	// feedback on a call whose record is still queued finds it.
	Flusher interface{ Flush(context.Context) error }
	// Stats, when set, feeds the capture gauges of /metrics.
	Stats           func() CaptureStats
	Logger          *slog.Logger
	MetricsRegistry *prometheus.Registry // metrics registry; a new one when nil
}

// CaptureStats are the capture counters exported as metrics.
type CaptureStats struct {
	QueueDepth                                    int
	Written, Spilled, Replayed, Lost, WriteErrors int64
	LagSeconds                                    float64
}

// Server is the gateway. Create it with New; it is an http.Handler.
type Server struct {
	opts    Options
	reg     *provider.Registry
	log     *slog.Logger
	mux     *http.ServeMux
	handler http.Handler
	invoke  provider.Invoker
	metrics *metrics

	keysExist   atomic.Bool  // any virtual key was ever created: auth is required
	keysChecked atomic.Int64 // unix nanos of the last store check while keysExist is false
	keyCache    sync.Map     // hash -> cachedKey
	inflight    sync.WaitGroup
}

type cachedKey struct {
	key     store.Key
	ok      bool
	expires time.Time
}

// New builds a server.
func New(ctx context.Context, opts Options) (*Server, error) {
	if opts.Registry == nil {
		return nil, errors.New("gateway: Options.Registry is required")
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 16 << 20
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = 2
	} else if opts.MaxRetries < 0 {
		opts.MaxRetries = 0
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = 100 * time.Millisecond
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 10 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{opts: opts, reg: opts.Registry, log: log, mux: http.NewServeMux()}
	s.metrics = newMetrics(opts.MetricsRegistry, opts.Stats)
	var inv provider.Invoker = &invoker{s: s}
	for i := len(opts.Middleware) - 1; i >= 0; i-- {
		inv = opts.Middleware[i](inv)
	}
	s.invoke = inv
	if opts.Store != nil {
		keys, err := opts.Store.ListKeys(ctx, "")
		if err != nil {
			return nil, fmt.Errorf("gateway: list keys: %w", err)
		}
		s.keysExist.Store(len(keys) > 0)
		s.keysChecked.Store(time.Now().UnixNano())
	}
	s.routes()
	s.handler = s.withRequestID(s.withRecover(s.mux))
	return s, nil
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("POST /v1/chat/completions", s.auth(false, s.handleChat))
	m.HandleFunc("POST /v1/embeddings", s.auth(false, s.handleEmbeddings))
	m.HandleFunc("GET /v1/models", s.auth(false, s.handleModels))
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	m.Handle("GET /metrics", s.metrics.handler())
	m.HandleFunc("GET /api/v1/requests", s.auth(true, s.handleListRequests))
	m.HandleFunc("GET /api/v1/requests/{id}", s.auth(true, s.handleGetRequest))
	m.HandleFunc("GET /api/v1/usage", s.auth(true, s.handleUsage))
	m.HandleFunc("POST /api/v1/feedback", s.auth(false, s.handleFeedback))
	m.HandleFunc("POST /api/v1/keys", s.auth(true, s.handleCreateKey))
	m.HandleFunc("GET /api/v1/keys", s.auth(true, s.handleListKeys))
	m.HandleFunc("DELETE /api/v1/keys/{id}", s.auth(true, s.handleRevokeKey))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		api.WriteError(w, &api.Error{Status: http.StatusNotFound, Type: "invalid_request_error",
			Message: fmt.Sprintf("unknown endpoint %s %s: Foundry serves POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models and /api/v1/...", r.Method, r.URL.Path)})
	})
}

// Handle registers an extra handler on the server's mux (dashboard, other
// management endpoints). Patterns under /api/ should wrap h with AdminOnly.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// AdminOnly wraps h so that it requires the admin key (when auth is on).
func (s *Server) AdminOnly(h http.HandlerFunc) http.HandlerFunc { return s.auth(true, h) }

// ServeHTTP serves one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

type ctxKey int

const (
	ctxRequestID ctxKey = iota
	ctxIdentity
)

// NewID returns a random request id.
func NewID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "req_" + hex.EncodeToString(b[:])
}

// RequestID returns the id of the request being served in ctx.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxRequestID).(string)
	return id
}

func (s *Server) withRequestID(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := NewID()
		w.Header().Set("X-Request-Id", id)
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxRequestID, id)))
	})
}

// withRecover is the last line of defence: a panic becomes a 500 with an
// OpenAI error body (when nothing was written yet) and a logged stack.
func (s *Server) withRecover(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic serving request", "id", RequestID(r.Context()), "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				if !rw.wrote {
					api.WriteError(rw, &api.Error{Status: 500, Message: "internal error (request " + RequestID(r.Context()) + "); this is a Foundry bug, please report it"})
				}
			}
		}()
		h.ServeHTTP(rw, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) { w.wrote = true; w.ResponseWriter.WriteHeader(code) }
func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		w.wrote = true
		f.Flush()
	}
}
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Serve serves on ln until ctx is cancelled, then shuts down gracefully:
// it stops accepting, waits up to drain for in-flight requests (streams
// included) to finish, and returns. Flushing capture is the caller's next step.
func (s *Server) Serve(ctx context.Context, ln net.Listener, drain time.Duration) error {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	if drain <= 0 {
		drain = 30 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		s.log.Warn("shutdown: in-flight requests did not finish in time; closing them", "drain", drain, "err", err)
		srv.Close()
	}
	s.inflight.Wait() // PostCall hooks of closed requests have run
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// CheckBind refuses a non-loopback address when no auth is configured.
func CheckBind(addr string, authConfigured bool) error {
	if authConfigured {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w (use host:port, e.g. 127.0.0.1:8080)", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("refusing to listen on %q without authentication: anyone who can reach it could use your upstream API keys. "+
		"Set FOUNDRY_ADMIN_KEY (and create virtual keys with `foundry keys create`), or listen on loopback with FOUNDRY_ADDR=127.0.0.1:8080", addr)
}
