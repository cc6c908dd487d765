package web

import (
	"net/http"

	"github.com/foundryhq/foundry/gateway"
	"github.com/foundryhq/foundry/store"
)

// usagePage is the data of the Overview and Costs pages.
type usagePage struct {
	Window  window
	Windows []window
	Usage   usage
	Chart   chartData
	Recent  []rowView // Overview: the latest failed calls
}

func (h *Handler) loadUsage(r *http.Request) (usagePage, error) {
	w := pickWindow(r.URL.Query().Get("window"))
	now := h.opts.Now()
	u, err := usageSeries(r.Context(), h.st, store.Query{Since: now.Add(-w.Span), Until: now}, w.Bucket)
	return usagePage{Window: w, Windows: windows, Usage: u, Chart: u.chart()}, err
}

func (h *Handler) handleOverview(w http.ResponseWriter, r *http.Request) {
	p, err := h.loadUsage(r)
	if err != nil {
		h.storeFailed(w, r, "sum up traffic", err)
		return
	}
	page, err := h.st.ListRecords(r.Context(), store.Query{Since: p.Usage.Since, Status: "error", Limit: 5})
	if err != nil {
		h.storeFailed(w, r, "list failed calls", err)
		return
	}
	for _, rec := range page.Records {
		p.Recent = append(p.Recent, rowView{RecordJSON: gateway.ViewRecord(rec, false), Href: "/ui/requests/" + rec.ID})
	}
	h.render(w, r, http.StatusOK, "overview", "Overview", "Overview", p)
}

func (h *Handler) handleCosts(w http.ResponseWriter, r *http.Request) {
	p, err := h.loadUsage(r)
	if err != nil {
		h.storeFailed(w, r, "sum up spend", err)
		return
	}
	h.render(w, r, http.StatusOK, "costs", "Costs", "Costs", p)
}
