package web

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/foundryhq/foundry/dataset"
	"github.com/foundryhq/foundry/eval"
	"github.com/foundryhq/foundry/store"
)

// flywheel is the Overview's strip of the newest dataset, training job,
// eval and route change: where traffic has got to on its way to a student.
// Each part is nil when there is none (or it cannot be read: the Overview
// never fails for the data dir's sake).
type flywheel struct {
	Dataset *flywheelCard
	Job     *flywheelCard
	Eval    *flywheelCard
	Route   *flywheelCard
}

type flywheelCard struct {
	Href, Title, Value, Detail, Status string // Status: a pill class, or ""
	At                                 time.Time
}

// Any reports whether there is a card to show.
func (f flywheel) Any() bool {
	return f.Dataset != nil || f.Job != nil || f.Eval != nil || f.Route != nil
}

func (h *Handler) loadFlywheel(ctx context.Context) flywheel {
	var f flywheel
	if vs, err := dataset.List(h.opts.DataDir); err != nil {
		h.log.Warn("dashboard: list datasets", "dir", h.opts.DataDir, "err", err)
	} else if len(vs) > 0 {
		newest := slices.MaxFunc(vs, func(a, b dataset.Version) int { return a.Manifest.CreatedAt.Compare(b.Manifest.CreatedAt) }).Manifest
		c := &flywheelCard{Href: datasetHref(newest), Title: newest.Ref(), At: newest.CreatedAt,
			Value:  fmtInt(newest.Rows["train"]+newest.Rows["val"]+newest.Rows["test"]) + " rows",
			Detail: "train / val / test " + fmtInt(newest.Rows["train"]) + " / " + fmtInt(newest.Rows["val"]) + " / " + fmtInt(newest.Rows["test"])}
		if len(newest.Funnel) > 0 {
			c.Value += " of " + fmtInt(newest.Funnel[0].Out)
		}
		f.Dataset = c
	}
	if jobs, _, err := listJobs(h.opts.DataDir); err != nil {
		h.log.Warn("dashboard: list training jobs", "dir", h.opts.DataDir, "err", err)
	} else if len(jobs) > 0 {
		j := jobs[0]
		c := &flywheelCard{Href: jobHref(j), Title: j.ID, Status: j.StatusClass(), Value: j.Status, At: j.Created,
			Detail: "step " + fmtInt(int64(j.Step)) + " of " + fmtInt(int64(j.Steps))}
		if v := j.BestVal(); v != nil {
			c.Detail += fmt.Sprintf(" · best val loss %.4f", *v)
		}
		f.Job = c
	}
	if ids, err := eval.List(h.evalDir()); err != nil {
		h.log.Warn("dashboard: list evals", "dir", h.evalDir(), "err", err)
	} else {
		var newest *eval.Summary
		for _, id := range ids {
			if s, err := eval.Load(h.evalDir(), id); err == nil && (newest == nil || s.Updated.After(newest.Updated)) {
				newest = s
			}
		}
		if newest != nil {
			c := &flywheelCard{Href: "/ui/evals/" + url.PathEscape(newest.ID), Title: newest.ID, At: newest.Updated}
			// The headline: the best candidate other than the reference, against it.
			var best, ref *eval.CandidateSummary
			bestV := -1.0
			for i := range newest.Candidates {
				cs := &newest.Candidates[i]
				if cs.Name == newest.Reference {
					ref = cs
					continue
				}
				if _, v := headline(cs); v > bestV {
					best, bestV = cs, v
				}
			}
			if best != nil {
				metric, v := headline(best)
				c.Value = best.Name + " " + fmtPct(v)
				c.Detail = metric
				if ref != nil {
					_, rv := headline(ref)
					c.Detail += " · " + ref.Name + " " + fmtPct(rv)
				}
			}
			f.Eval = c
		}
	}
	if rvs, err := h.st.ListRoutes(ctx); err != nil {
		h.log.Warn("dashboard: list routes", "err", err)
	} else if len(rvs) > 0 {
		rv := slices.MaxFunc(rvs, func(a, b store.RouteVersion) int { return a.CreatedAt.Compare(b.CreatedAt) })
		pv := viewPolicy(rv.Policy)
		c := &flywheelCard{Href: routeHref(rv.Name), Title: rv.Name + " v" + fmtInt(int64(rv.Version)), At: rv.CreatedAt, Detail: "by " + rv.Actor}
		for i, a := range pv.Arms {
			if i > 0 {
				c.Value += " / "
			}
			c.Value += fmt.Sprintf("%s %.0f%%", a.Name, a.Share)
		}
		if isRollback(rv) && rv.Version > 1 {
			c.Status, c.Detail = "err", "rolled back by "+rv.Actor
		}
		f.Route = c
	}
	return f
}
