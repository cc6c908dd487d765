// Package web is Foundry's dashboard, served at / of `foundry serve`:
// server-rendered html/template pages made live with htmx and charted with
// uPlot. Both libraries are committed under static/vendor and embedded, so
// there is no build step at run time and no network needed in the browser.
//
// Pages read the store directly (the same store.Store the gateway writes);
// filters use the management API's vocabulary (gateway.ParseQuery). The
// Datasets, Training and Evals pages read the files the CLI writes under
// Options.DataDir, through the dataset and eval packages and job.json.
package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/foundryhq/foundry/dataset"
	"github.com/foundryhq/foundry/gateway"
	"github.com/foundryhq/foundry/pricing"
	"github.com/foundryhq/foundry/route"
	"github.com/foundryhq/foundry/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure the dashboard.
type Options struct {
	Store store.Store // required: the pages show what it holds
	// AdminKey, when set, guards every page behind a login form asking for
	// it; "" leaves the dashboard open (the gateway then listens on loopback only).
	AdminKey string
	// Flusher, when set, is flushed before a request detail lookup misses, so
	// a call whose record is still queued in capture can be opened at once.
	Flusher interface{ Flush(context.Context) error }
	Logger  *slog.Logger
	// DataDir holds what the Datasets, Training and Evals pages show:
	// datasets/ (dataset.List), evals/ (eval.List) and training jobs (every
	// job.json up to three directories below it). "" is dataset.DefaultDataDir.
	DataDir string
	// Prices price the break-even's teacher and student where captured costs
	// do not (the gateway's table); nil is pricing.New(nil).
	Prices *pricing.Table
	// RouteStats, when set, gives a route's live numbers on this replica
	// (route.Router.Stats); the Routes pages show them beside the store's.
	RouteStats func(name string) (route.Stats, bool)
	// Now returns the current time (time.Now); tests pin it.
	Now func() time.Time
}

// Handler serves the dashboard. Create it with New; mount it on a gateway
// with Mount, or serve it on its own (it is an http.Handler).
type Handler struct {
	opts  Options
	st    store.Store
	log   *slog.Logger
	mux   *http.ServeMux
	pages map[string]*template.Template
	// sessionKey signs session cookies; derived from the admin key so that a
	// new admin key logs every browser out.
	sessionKey []byte
}

// nav is the sidebar, in order. A page with no Path is shown as coming soon;
// to add a page, give it a Path here, a template in templates/, and a route
// in routes.
var nav = []navItem{
	{Name: "Overview", Path: "/", Icon: "◎"},
	{Name: "Traffic", Path: "/ui/traffic", Icon: "⇄"},
	{Name: "Costs", Path: "/ui/costs", Icon: "$"},
	{Name: "Datasets", Path: "/ui/datasets", Icon: "▤"},
	{Name: "Training", Path: "/ui/training", Icon: "↗"},
	{Name: "Evals", Path: "/ui/evals", Icon: "✓"},
	{Name: "Routes", Path: "/ui/routes", Icon: "⇉"},
}

type navItem struct {
	Name, Path, Icon string
}

// New builds the dashboard. It panics only when the embedded templates do
// not parse, which the package's tests rule out.
func New(opts Options) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.DataDir == "" {
		opts.DataDir = dataset.DefaultDataDir
	}
	if opts.Prices == nil {
		opts.Prices = pricing.New(nil)
	}
	h := &Handler{opts: opts, st: opts.Store, log: opts.Logger, mux: http.NewServeMux()}
	if opts.AdminKey != "" {
		h.sessionKey = deriveSessionKey(opts.AdminKey)
	}
	h.pages = parseTemplates()
	h.routes()
	return h
}

// Mount registers the dashboard on a gateway: GET / and everything under
// /ui/. The gateway keeps /v1 and /api.
func (h *Handler) Mount(srv *gateway.Server) {
	srv.Handle("/{$}", h)
	srv.Handle("/ui/", h)
}

func (h *Handler) routes() {
	m := h.mux
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", cacheStatic(http.FileServerFS(static))))
	m.HandleFunc("GET /ui/login", h.handleLoginForm)
	m.HandleFunc("POST /ui/login", h.handleLogin)
	m.HandleFunc("POST /ui/logout", h.handleLogout)

	m.HandleFunc("GET /{$}", h.private(h.handleOverview))
	m.HandleFunc("GET /ui/traffic", h.private(h.handleTraffic))
	m.HandleFunc("GET /ui/traffic/rows", h.private(h.handleTrafficRows))
	m.HandleFunc("GET /ui/requests/{id}", h.private(h.handleRequest))
	m.HandleFunc("POST /ui/requests/{id}/feedback", h.private(h.handleFeedback))
	m.HandleFunc("GET /ui/costs", h.private(h.handleCosts))
	m.HandleFunc("GET /ui/datasets", h.private(h.handleDatasets))
	m.HandleFunc("GET /ui/datasets/{name}/{hash}", h.private(h.handleDataset))
	m.HandleFunc("GET /ui/training", h.private(h.handleJobs))
	m.HandleFunc("GET /ui/training/{id}", h.private(h.handleJob))
	m.HandleFunc("GET /ui/evals", h.private(h.handleEvals))
	m.HandleFunc("GET /ui/evals/{id}", h.private(h.handleEval))
	m.HandleFunc("GET /ui/routes", h.private(h.handleRoutes))
	m.HandleFunc("GET /ui/routes/{name}", h.private(h.handleRoute))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, http.StatusNotFound, "There is no dashboard page at "+r.URL.Path+".", nil)
	})
}

// ServeHTTP serves one dashboard request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	// Scripts only from our own files (chart data travels as JSON, never as
	// code); inline styles are allowed because uPlot and htmx set them.
	hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	h.mux.ServeHTTP(w, r)
}

func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

// pageData is what every full page gets; Data is the page's own.
type pageData struct {
	Title  string
	Active string // Name of the nav item to highlight
	Nav    []navItem
	Auth   bool // a login is in use: show "Log out"
	Data   any
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, page, active, title string, data any) {
	h.execute(w, r, status, page, "layout", pageData{Title: title, Active: active, Nav: nav, Auth: h.opts.AdminKey != "", Data: data})
}

// renderPart renders one named template of a page without the layout (for htmx swaps).
func (h *Handler) renderPart(w http.ResponseWriter, r *http.Request, page, name string, data any) {
	h.execute(w, r, http.StatusOK, page, name, data)
}

func (h *Handler) execute(w http.ResponseWriter, r *http.Request, status int, page, name string, data any) {
	t, ok := h.pages[page]
	if !ok {
		panic("web: no template " + page)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		h.log.Error("dashboard: render", "page", page, "template", name, "err", err)
		http.Error(w, "the dashboard could not render this page ("+err.Error()+"); this is a Foundry bug, please report it", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// fail shows an error page (or, for an htmx request, an inline error).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, msg string, err error) {
	if err != nil {
		h.log.Error("dashboard", "path", r.URL.Path, "status", status, "err", err)
		msg += " (" + err.Error() + ")"
	}
	if isHTMX(r) {
		// htmx does not swap error responses by default; 200 with the message does.
		h.renderPart(w, r, "error", "error-inline", msg)
		return
	}
	h.render(w, r, status, "error", "", http.StatusText(status), msg)
}

func (h *Handler) storeFailed(w http.ResponseWriter, r *http.Request, what string, err error) {
	status := http.StatusInternalServerError
	msg := what + ": the store failed; check the database and reload."
	if errors.Is(err, store.ErrInvalidQuery) {
		status, msg = http.StatusBadRequest, what+": the filter is not valid; clear it and try again."
	}
	h.fail(w, r, status, msg, err)
}

func isHTMX(r *http.Request) bool { return r.Header.Get("HX-Request") == "true" }

// sameOrigin rejects state-changing requests sent by other sites: the
// session cookie is SameSite=Strict, but an open (loopback) dashboard has no
// cookie to protect it.
func sameOrigin(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		return strings.TrimPrefix(strings.TrimPrefix(o, "http://"), "https://") == r.Host
	}
	return true
}

func parseTemplates() map[string]*template.Template {
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html"))
	pages := map[string]*template.Template{}
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(f, "templates/"), ".html")
		if name == "layout" || name == "partials" {
			continue
		}
		pages[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, f))
	}
	return pages
}
