package web

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/foundryhq/foundry/route"
	"github.com/foundryhq/foundry/store"
)

// policyView is a route version's policy in words: arms with their shares,
// and what else the policy does.
type policyView struct {
	Arms     []armView
	Features []string // "sticky by user", "shadow → m", "fallback a, b", "rollback watch"
	Error    string   // the stored policy does not parse (shown, not fatal)
}

type armView struct {
	Name, Model, EscalateTo string
	Share                   float64 // percent of traffic
}

func viewPolicy(raw []byte) policyView {
	p, err := route.ParsePolicy(raw)
	if err != nil {
		return policyView{Error: err.Error()}
	}
	var total float64
	for _, a := range p.Arms {
		total += armWeight(a)
	}
	var v policyView
	for _, a := range p.Arms {
		av := armView{Name: cmp.Or(a.Name, a.Model), Model: a.Model, EscalateTo: a.EscalateTo}
		if total > 0 {
			av.Share = 100 * armWeight(a) / total
		}
		v.Arms = append(v.Arms, av)
	}
	if p.Sticky != nil {
		v.Features = append(v.Features, "sticky by "+p.Sticky.Key)
	}
	for _, a := range p.Arms {
		if a.EscalateTo != "" {
			v.Features = append(v.Features, "cascade "+cmp.Or(a.Name, a.Model)+" → "+a.EscalateTo)
		}
	}
	if len(p.Fallback) > 0 {
		v.Features = append(v.Features, "fallback "+strings.Join(p.Fallback, ", "))
	}
	if p.Shadow != nil && len(p.Shadow.Targets) > 0 {
		v.Features = append(v.Features, "shadow → "+strings.Join(p.Shadow.Targets, ", "))
	}
	if p.Rollback != nil {
		v.Features = append(v.Features, "auto-rollback")
	}
	return v
}

func armWeight(a route.Arm) float64 {
	if a.Weight == nil {
		return 1
	}
	return *a.Weight
}

type routesPage struct {
	Routes []routeRow
}

type routeRow struct {
	store.RouteVersion
	Href     string
	Policy   policyView
	Requests int64 // records in the last 24 hours, shadow and escalation copies included
}

func routeHref(name string) string { return "/ui/routes/" + url.PathEscape(name) }

func (h *Handler) handleRoutes(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	rvs, err := h.st.ListRoutes(ctx)
	if err != nil {
		h.storeFailed(w, r, "list routes", err)
		return
	}
	now := h.opts.Now()
	var p routesPage
	for _, rv := range rvs {
		n, err := h.st.CountRecords(ctx, store.Query{Metadata: map[string]string{"route": rv.Name}, Since: now.Add(-24 * time.Hour), Until: now})
		if err != nil {
			h.storeFailed(w, r, "count a route's calls", err)
			return
		}
		p.Routes = append(p.Routes, routeRow{RouteVersion: rv, Href: routeHref(rv.Name), Policy: viewPolicy(rv.Policy), Requests: n})
	}
	h.render(w, r, http.StatusOK, "routes", "Routes", "Routes", p)
}

// routePage is one route: its policy, traffic per arm over a window, live
// numbers and the history of versions.
type routePage struct {
	Name    string
	Current routeRow
	Window  window
	Windows []window
	Split   routeSplit
	Chart   splitChart
	Live    *route.Stats
	History []routeEvent // newest first
}

// routeSplit is the route's calls in the window per arm.
type routeSplit struct {
	Requests, Escalations, Shadows, Errors int64
	Arms                                   []armCount
}

type armCount struct {
	Arm      string
	Requests int64
	Share    float64 // percent of the window's client calls
}

// splitChart is the traffic split as app.js draws it: stacked bars per arm,
// and escalations per bucket.
type splitChart struct {
	T           []int64   `json:"t"`
	Arms        []string  `json:"arms"`
	Calls       [][]int64 `json:"calls"` // [arm][bucket]
	Escalations []int64   `json:"escalations"`
	Versions    []marker  `json:"versions"` // version changes in the window
}

type marker struct {
	T     int64  `json:"t"`
	Label string `json:"label"`
	Kind  string `json:"kind"` // "change" or "rollback"
}

// routeEvent is one version in the audit timeline.
type routeEvent struct {
	store.RouteVersion
	Policy   policyView
	Rollback bool // a rollback (automatic or asked for)
	Auto     bool // written by automatic rollback
	Current  bool
}

func isRollback(rv store.RouteVersion) bool {
	return rv.Actor == route.AutoRollbackActor || strings.Contains(strings.ToLower(rv.Comment), "rollback") || strings.Contains(strings.ToLower(rv.Comment), "roll back")
}

func (h *Handler) handleRoute(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := r.PathValue("name")
	hist, err := h.st.RouteHistory(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		h.fail(w, r, http.StatusNotFound, fmt.Sprintf("No route %q. `foundry route set %s --canary teacher=90,student=10` creates one.", name, name), nil)
		return
	}
	if err != nil {
		h.storeFailed(w, r, "read the route's history", err)
		return
	}
	win := pickWindow(r.URL.Query().Get("window"))
	now := h.opts.Now()
	cur := hist[len(hist)-1]
	p := routePage{Name: name, Window: win, Windows: windows,
		Current: routeRow{RouteVersion: cur, Href: routeHref(name), Policy: viewPolicy(cur.Policy)}}
	for i := len(hist) - 1; i >= 0; i-- {
		rv := hist[i]
		p.History = append(p.History, routeEvent{RouteVersion: rv, Policy: viewPolicy(rv.Policy), Rollback: i > 0 && isRollback(rv),
			Auto: rv.Actor == route.AutoRollbackActor, Current: i == len(hist)-1})
	}
	if h.opts.RouteStats != nil {
		if s, ok := h.opts.RouteStats(name); ok {
			p.Live = &s
		}
	}
	since := now.Add(-win.Span)
	p.Split, p.Chart, err = h.routeTraffic(r, name, since, now, win.Bucket)
	if err != nil {
		h.storeFailed(w, r, "read the route's calls", err)
		return
	}
	for _, rv := range hist {
		if rv.CreatedAt.Before(since) || rv.Version == 1 {
			continue
		}
		kind := "change"
		if isRollback(rv) {
			kind = "rollback"
		}
		p.Chart.Versions = append(p.Chart.Versions, marker{T: rv.CreatedAt.Unix(), Label: fmt.Sprintf("v%d", rv.Version), Kind: kind})
	}
	h.render(w, r, http.StatusOK, "route", "Routes", "Route "+name, p)
}

// maxChartArms bounds the stacked series; the rest are summed as "other".
const maxChartArms = 8

// routeTraffic buckets the route's client calls (not shadow copies, not the
// candidate calls a cascade escalated from) per arm by streaming its records.
func (h *Handler) routeTraffic(r *http.Request, name string, since, until time.Time, bucket time.Duration) (routeSplit, splitChart, error) {
	start := since.Truncate(bucket)
	n := max(1, int(math.Ceil(float64(until.Sub(start))/float64(bucket))))
	c := splitChart{T: make([]int64, n), Escalations: make([]int64, n), Arms: []string{}, Calls: [][]int64{}, Versions: []marker{}}
	for i := range c.T {
		c.T[i] = start.Add(time.Duration(i) * bucket).Unix()
	}
	var s routeSplit
	byArm := map[string][]int64{}
	err := h.st.ScanRecords(r.Context(), store.Query{Metadata: map[string]string{"route": name}, Since: since, Until: until}, func(rec store.RecordWithFeedback) error {
		md := rec.Metadata
		if md["route.shadow"] == "true" {
			s.Shadows++
			return nil
		}
		if rec.ParentID != "" {
			return nil // a cascade's candidate call; its client call is counted
		}
		i := int(rec.CreatedAt.Sub(start) / bucket)
		if i < 0 || i >= n {
			return nil
		}
		arm := cmp.Or(md["route.arm"], "(none)")
		row := byArm[arm]
		if row == nil {
			row = make([]int64, n)
			byArm[arm] = row
		}
		row[i]++
		s.Requests++
		if rec.Status >= 400 {
			s.Errors++
		}
		if md["route.escalated"] == "true" {
			s.Escalations++
			c.Escalations[i]++
		}
		return nil
	})
	if err != nil {
		return s, c, err
	}
	for arm, row := range byArm {
		var sum int64
		for _, v := range row {
			sum += v
		}
		s.Arms = append(s.Arms, armCount{Arm: arm, Requests: sum, Share: 100 * float64(sum) / float64(max(s.Requests, 1))})
	}
	slices.SortFunc(s.Arms, func(a, b armCount) int {
		return cmp.Or(cmp.Compare(b.Requests, a.Requests), strings.Compare(a.Arm, b.Arm))
	})
	for i, a := range s.Arms {
		if i < maxChartArms {
			c.Arms = append(c.Arms, a.Arm)
			c.Calls = append(c.Calls, byArm[a.Arm])
			continue
		}
		if i == maxChartArms {
			c.Arms = append(c.Arms, "other")
			c.Calls = append(c.Calls, make([]int64, n))
		}
		for j, v := range byArm[a.Arm] {
			c.Calls[maxChartArms][j] += v
		}
	}
	return s, c, nil
}
