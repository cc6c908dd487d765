package econ

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/gateway"
	"github.com/foundryhq/foundry/pricing"
	"github.com/foundryhq/foundry/store"
)

// Handler serves GET /api/v1/costs: the Report of a window as JSON. Query
// parameters: the record filters of /api/v1/requests (since — default
// 30d —, until, project, route, model, provider, tag...), by (model,
// route, project, day), and for the break-even student, teacher,
// training_cost (USD), gpu_hourly and student_throughput (self-hosted
// student), revenue_per_request, revenue_per_seat and seats. Mount it
// behind the admin key.
type Handler struct {
	Store  store.Store
	Prices *pricing.Table // nil: pricing.New(nil)
	Logger *slog.Logger   // nil: slog.Default()
}

// NewHandler returns the costs handler over st, pricing with prices.
func NewHandler(st store.Store, prices *pricing.Table, log *slog.Logger) *Handler {
	return &Handler{Store: st, Prices: prices, Logger: log}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	v := r.URL.Query()
	q, err := gateway.ParseQuery(v, now)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	o := Options{Filter: q, Since: q.Since, Until: q.Until, By: v.Get("by"), Prices: h.Prices,
		Student: v.Get("student"), Teacher: v.Get("teacher"), Now: func() time.Time { return now }}
	num := func(name string, dst *float64) bool {
		s := v.Get(name)
		if s == "" {
			return true
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
			api.WriteError(w, api.BadRequest(name, fmt.Sprintf("%s %q: give a non-negative number", name, s)))
			return false
		}
		*dst = f
		return true
	}
	var hourly, tps, seats float64
	if !num("training_cost", &o.TrainingUSD) || !num("gpu_hourly", &hourly) || !num("student_throughput", &tps) ||
		!num("revenue_per_request", &o.Revenue.PerRequestUSD) || !num("revenue_per_seat", &o.Revenue.PerSeatMonthUSD) || !num("seats", &seats) {
		return
	}
	o.Revenue.Seats = int(seats)
	if hourly > 0 || tps > 0 {
		o.Serving = &Serving{GPUHourlyUSD: hourly, TokensPerSecond: tps}
		if err := o.Serving.Check(); err != nil {
			api.WriteError(w, api.BadRequest("gpu_hourly", "self-hosted student: "+err.Error()))
			return
		}
	}
	if (o.Student == "") != (o.Teacher == "") {
		api.WriteError(w, api.BadRequest("teacher", "the break-even needs both student and teacher"))
		return
	}
	rep, err := Build(r.Context(), h.Store, o)
	var oe *OptionError
	if errors.Is(err, store.ErrInvalidQuery) || errors.As(err, &oe) {
		api.WriteError(w, api.BadRequest("", err.Error()))
		return
	}
	if err != nil {
		log := h.Logger
		if log == nil {
			log = slog.Default()
		}
		log.ErrorContext(r.Context(), "costs report failed", "err", err)
		api.WriteError(w, &api.Error{Status: http.StatusInternalServerError, Message: err.Error()})
		return
	}
	api.WriteJSON(w, http.StatusOK, rep)
}
