package web

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/gateway"
	"github.com/foundryhq/foundry/store"
)

// trafficFilter is the Traffic page's filter form; its fields are the
// management API's query parameters (gateway.ParseQuery).
type trafficFilter struct {
	Model, Provider, Route, Tag, Status, Since, Feedback string
}

// filterParams are the query parameters the form owns, in display order.
var filterParams = []string{"model", "provider", "route", "tag", "status", "since", "feedback"}

// timeRanges are the choices of the "since" select and the Costs window.
var timeRanges = []struct{ Value, Label string }{
	{"15m", "Last 15 minutes"}, {"1h", "Last hour"}, {"6h", "Last 6 hours"}, {"24h", "Last 24 hours"},
	{"7d", "Last 7 days"}, {"30d", "Last 30 days"}, {"", "Any time"},
}

func readFilter(v url.Values) (trafficFilter, url.Values) {
	clean := url.Values{}
	for _, k := range filterParams {
		if s := strings.TrimSpace(v.Get(k)); s != "" {
			clean.Set(k, s)
		}
	}
	return trafficFilter{Model: clean.Get("model"), Provider: clean.Get("provider"), Route: clean.Get("route"), Tag: clean.Get("tag"),
		Status: clean.Get("status"), Since: clean.Get("since"), Feedback: clean.Get("feedback")}, clean
}

type trafficPage struct {
	Filter    trafficFilter
	Query     string // the filter as a query string, for links and polling
	Ranges    []struct{ Value, Label string }
	Models    []string // suggestions for the filter inputs
	Providers []string
	Routes    []string
	Results   trafficResults
	Error     string
}

type trafficResults struct {
	Rows    []rowView
	Total   int64
	More    string // query string of the next (older) page; "" at the end
	Updated time.Time
}

// rowView is one line of the traffic table.
type rowView struct {
	gateway.RecordJSON
	Href string
}

const pageSize = 50

func (h *Handler) listTraffic(ctx context.Context, v url.Values, cursor string) (trafficResults, error) {
	_, clean := readFilter(v)
	q, err := gateway.ParseQuery(clean, h.opts.Now())
	if err != nil {
		return trafficResults{}, err
	}
	q.Cursor, q.Limit = cursor, pageSize
	page, err := h.st.ListRecords(ctx, q)
	if err != nil {
		return trafficResults{}, err
	}
	res := trafficResults{Updated: h.opts.Now()}
	for _, r := range page.Records {
		res.Rows = append(res.Rows, rowView{RecordJSON: gateway.ViewRecord(r, false), Href: "/ui/requests/" + url.PathEscape(r.ID)})
	}
	if page.NextCursor != "" {
		res.More = withParam(clean, "cursor", page.NextCursor)
	}
	if cursor == "" {
		if res.Total, err = h.st.CountRecords(ctx, q); err != nil {
			return res, err
		}
	}
	return res, nil
}

func (h *Handler) handleTraffic(w http.ResponseWriter, r *http.Request) {
	f, clean := readFilter(r.URL.Query())
	p := trafficPage{Filter: f, Query: clean.Encode(), Ranges: timeRanges}
	res, err := h.listTraffic(r.Context(), clean, "")
	if err != nil {
		if !isBadQuery(err) {
			h.storeFailed(w, r, "list captured calls", err)
			return
		}
		p.Error = err.Error()
	}
	p.Results = res
	p.Models, p.Providers, p.Routes = suggestions(res.Rows, f)
	h.render(w, r, http.StatusOK, "traffic", "Traffic", "Traffic", p)
}

// handleTrafficRows serves the htmx swaps: the first page of results (the
// filter form and the live poll), or with a cursor the rows of an older page.
func (h *Handler) handleTrafficRows(w http.ResponseWriter, r *http.Request) {
	_, clean := readFilter(r.URL.Query())
	cursor := r.URL.Query().Get("cursor")
	res, err := h.listTraffic(r.Context(), clean, cursor)
	if err != nil {
		if isBadQuery(err) {
			h.renderPart(w, r, "error", "error-inline", err.Error())
			return
		}
		h.storeFailed(w, r, "list captured calls", err)
		return
	}
	if cursor != "" {
		h.renderPart(w, r, "traffic", "rows", res)
		return
	}
	w.Header().Set("HX-Replace-Url", "/ui/traffic?"+clean.Encode())
	h.renderPart(w, r, "traffic", "results", res)
}

func isBadQuery(err error) bool {
	var apiErr *api.Error
	return errors.Is(err, store.ErrInvalidQuery) || errors.As(err, &apiErr)
}

// suggestions lists the models, providers and routes seen on the page, for
// the filter inputs' autocompletion.
func suggestions(rows []rowView, f trafficFilter) (models, providers, routes []string) {
	add := func(list []string, s string) []string {
		if s != "" && !slices.Contains(list, s) {
			list = append(list, s)
		}
		return list
	}
	models, providers, routes = add(nil, f.Model), add(nil, f.Provider), add(nil, f.Route)
	for _, r := range rows {
		models, providers, routes = add(models, r.Model), add(providers, r.Provider), add(routes, r.Route)
	}
	slices.Sort(models)
	slices.Sort(providers)
	slices.Sort(routes)
	return models, providers, routes
}

// getRecord looks a record up, flushing capture once when it is not there
// yet (a call made a moment ago may still be queued).
func (h *Handler) getRecord(ctx context.Context, id string) (store.RecordWithFeedback, error) {
	rec, err := h.st.GetRecord(ctx, id)
	if errors.Is(err, store.ErrNotFound) && h.opts.Flusher != nil {
		if ferr := h.opts.Flusher.Flush(ctx); ferr == nil {
			rec, err = h.st.GetRecord(ctx, id)
		}
	}
	return rec, err
}

func (h *Handler) handleRequest(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rec, err := h.getRecord(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		h.fail(w, r, http.StatusNotFound, fmt.Sprintf("No captured call %q. Ids come from the X-Request-Id response header; old calls may have been removed by retention.", id), nil)
		return
	}
	if err != nil {
		h.storeFailed(w, r, "open captured call", err)
		return
	}
	h.render(w, r, http.StatusOK, "request", "Traffic", "Call "+id, viewDetail(rec))
}

// feedbackView is the feedback section of a request's page.
type feedbackView struct {
	ID       string
	Feedback *gateway.FeedbackJSON
	Saved    bool
	Error    string
	Form     struct{ Score, Label, Comment string }
}

func (h *Handler) handleFeedback(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !sameOrigin(r) {
		h.fail(w, r, http.StatusForbidden, "Feedback must be sent from the dashboard itself, not from another site.", nil)
		return
	}
	fv := feedbackView{ID: id}
	fv.Form.Score, fv.Form.Label, fv.Form.Comment = strings.TrimSpace(r.PostFormValue("score")), strings.TrimSpace(r.PostFormValue("label")), strings.TrimSpace(r.PostFormValue("comment"))
	fb := store.Feedback{RequestID: id, Label: fv.Form.Label, Comment: fv.Form.Comment, CreatedAt: h.opts.Now().UTC()}
	if fv.Form.Score != "" {
		s, err := strconv.ParseFloat(fv.Form.Score, 64)
		if err != nil || math.IsNaN(s) || math.IsInf(s, 0) {
			fv.Error = fmt.Sprintf("Score %q is not a number: use any scale your app uses, e.g. 1 for good and 0 for bad.", fv.Form.Score)
		}
		fb.Score = &s
	}
	if fv.Error == "" && fb.Score == nil && fb.Label == "" && fb.Comment == "" {
		fv.Error = "Give a score, a label or a comment."
	}
	ctx := r.Context()
	if fv.Error == "" {
		err := h.st.AddFeedback(ctx, fb)
		switch {
		case errors.Is(err, store.ErrNotFound):
			fv.Error = fmt.Sprintf("No captured call %q to rate: it may have been removed by retention.", id)
		case err != nil:
			h.log.Error("dashboard: add feedback", "id", id, "err", err)
			fv.Error = "The store failed to save the feedback (" + err.Error() + "); check the database and try again."
		default:
			fv.Saved = true
			fv.Form.Score, fv.Form.Label, fv.Form.Comment = "", "", ""
		}
	}
	if rec, err := h.st.GetRecord(ctx, id); err == nil && rec.Feedback != nil {
		fv.Feedback = gateway.ViewRecord(rec, false).Feedback
	}
	if !isHTMX(r) {
		if fv.Error != "" {
			h.fail(w, r, http.StatusBadRequest, fv.Error, nil)
			return
		}
		http.Redirect(w, r, "/ui/requests/"+url.PathEscape(id)+"#feedback", http.StatusSeeOther)
		return
	}
	h.renderPart(w, r, "request", "feedback", fv)
}
