package route

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/store"
)

// Mounter is where the management API is mounted: *gateway.Server is one.
type Mounter interface {
	Handle(pattern string, h http.Handler)
	AdminOnly(h http.HandlerFunc) http.HandlerFunc
}

// Mount registers the routes management API, admin only:
//
//	GET  /api/v1/routes                      every route's latest version and live stats
//	GET  /api/v1/routes/{name}               one route
//	PUT  /api/v1/routes/{name}               a new version (body: the policy, YAML or JSON;
//	                                         ?actor=&comment=&if_version=)
//	GET  /api/v1/routes/{name}/history       every version, oldest first
//	POST /api/v1/routes/{name}/rollback      {"version": n, "actor": "...", "comment": "..."}
func (r *Router) Mount(m Mounter) {
	m.Handle("GET /api/v1/routes", m.AdminOnly(r.handleList))
	m.Handle("GET /api/v1/routes/{name}", m.AdminOnly(r.handleGet))
	m.Handle("PUT /api/v1/routes/{name}", m.AdminOnly(r.handlePut))
	m.Handle("GET /api/v1/routes/{name}/history", m.AdminOnly(r.handleHistory))
	m.Handle("POST /api/v1/routes/{name}/rollback", m.AdminOnly(r.handleRollback))
}

// RouteJSON is a route version as the API shows it.
type RouteJSON struct {
	Name      string          `json:"name"`
	Version   int             `json:"version"`
	Actor     string          `json:"actor"`
	Comment   string          `json:"comment"`
	CreatedAt time.Time       `json:"created_at"`
	Policy    json.RawMessage `json:"policy"`
	Stats     *Stats          `json:"stats,omitempty"`
}

func (r *Router) routeJSON(rv store.RouteVersion, withStats bool) RouteJSON {
	out := RouteJSON{Name: rv.Name, Version: rv.Version, Actor: rv.Actor, Comment: rv.Comment, CreatedAt: rv.CreatedAt, Policy: rv.Policy}
	if withStats {
		if s, ok := r.Stats(rv.Name); ok {
			out.Stats = &s
		}
	}
	return out
}

func (r *Router) handleList(w http.ResponseWriter, req *http.Request) {
	list, err := r.opts.Store.ListRoutes(req.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	out := struct {
		Data []RouteJSON `json:"data"`
	}{Data: []RouteJSON{}}
	for _, rv := range list {
		out.Data = append(out.Data, r.routeJSON(rv, true))
	}
	api.WriteJSON(w, http.StatusOK, out)
}

func (r *Router) handleGet(w http.ResponseWriter, req *http.Request) {
	rv, err := r.opts.Store.GetRoute(req.Context(), req.PathValue("name"))
	if err != nil {
		writeErr(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, r.routeJSON(rv, true))
}

func (r *Router) handlePut(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 1<<20))
	if err != nil {
		api.WriteError(w, api.BadRequest("", "read the policy: "+err.Error()+" (a policy is at most 1 MiB)"))
		return
	}
	q := req.URL.Query()
	ch := Change{Actor: q.Get("actor"), Comment: q.Get("comment")}
	if ch.Actor == "" {
		ch.Actor = "api"
	}
	if v := q.Get("if_version"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			api.WriteError(w, api.BadRequest("if_version", fmt.Sprintf("if_version %q is not a version number", v)))
			return
		}
		ch.IfVersion = &n
	}
	rv, err := r.Put(req.Context(), req.PathValue("name"), body, ch)
	if err != nil {
		writeErr(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, r.routeJSON(rv, true))
}

func (r *Router) handleHistory(w http.ResponseWriter, req *http.Request) {
	hist, err := r.opts.Store.RouteHistory(req.Context(), req.PathValue("name"))
	if err != nil {
		writeErr(w, err)
		return
	}
	out := struct {
		Data []RouteJSON `json:"data"`
	}{}
	for _, rv := range hist {
		out.Data = append(out.Data, r.routeJSON(rv, false))
	}
	api.WriteJSON(w, http.StatusOK, out)
}

func (r *Router) handleRollback(w http.ResponseWriter, req *http.Request) {
	var in struct {
		Version int    `json:"version"`
		Actor   string `json:"actor"`
		Comment string `json:"comment"`
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 64<<10))
	if err == nil && len(strings.TrimSpace(string(body))) > 0 {
		err = json.Unmarshal(body, &in)
	}
	if err != nil {
		api.WriteError(w, api.BadRequest("", `the body must be empty or {"version": n, "actor": "...", "comment": "..."}: `+err.Error()))
		return
	}
	if in.Actor == "" {
		in.Actor = "api"
	}
	rv, err := r.Rollback(req.Context(), req.PathValue("name"), in.Version, Change{Actor: in.Actor, Comment: in.Comment})
	if err != nil {
		writeErr(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, r.routeJSON(rv, true))
}

// writeErr maps policy errors to 400, missing routes to 404 and lost races to 409.
func writeErr(w http.ResponseWriter, err error) {
	var pe *PolicyError
	switch {
	case errors.As(err, &pe):
		api.WriteError(w, &api.Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_policy", Message: pe.Error()})
	case errors.Is(err, store.ErrNotFound):
		api.WriteError(w, &api.Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "route_not_found",
			Message: err.Error() + ": create the route with PUT /api/v1/routes/{name} or `foundry route set`"})
	case errors.Is(err, store.ErrConflict):
		api.WriteError(w, &api.Error{Status: http.StatusConflict, Type: "invalid_request_error", Code: "conflict", Message: err.Error()})
	default:
		api.WriteError(w, err)
	}
}
