package gateway

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/foundryhq/foundry/provider"
)

// metrics are the gateway's Prometheus series. Labels stay low-cardinality:
// the model label is the upstream model actually resolved (never an
// arbitrary name a client sent), and status is the HTTP code.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	ttft      *prometheus.HistogramVec
	tokens    *prometheus.CounterVec
	upstream  *prometheus.CounterVec
	inflight  prometheus.Gauge
	rejected  *prometheus.CounterVec
	bodyBytes prometheus.Histogram
}

var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}

func newMetrics(reg *prometheus.Registry, stats func() CaptureStats) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "foundry_requests_total",
			Help: "Requests served, by endpoint, provider, model and HTTP status."}, []string{"endpoint", "provider", "model", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "foundry_request_duration_seconds",
			Help: "Request arrival to last byte.", Buckets: latencyBuckets}, []string{"endpoint", "provider"}),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "foundry_time_to_first_token_seconds",
			Help: "Request arrival to the first token (streams) or the response (non-streaming).", Buckets: latencyBuckets}, []string{"endpoint", "provider"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "foundry_tokens_total",
			Help: "Tokens reported by upstreams, by provider, model and kind (prompt, completion)."}, []string{"provider", "model", "kind"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "foundry_upstream_errors_total",
			Help: "Failed upstream attempts (retries and fallbacks included), by provider and upstream status (0: no answer, timeout: timed out)."}, []string{"provider", "status"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "foundry_requests_in_flight", Help: "Requests being served."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "foundry_rejected_requests_total",
			Help: "Requests refused before reaching a provider, by reason (auth, bad_request, too_large)."}, []string{"reason"}),
		bodyBytes: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "foundry_request_body_bytes",
			Help: "Request body sizes.", Buckets: prometheus.ExponentialBuckets(256, 4, 10)}),
	}
	reg.MustRegister(m.requests, m.latency, m.ttft, m.tokens, m.upstream, m.inflight, m.rejected, m.bodyBytes)
	if stats != nil {
		gauge := func(name, help string, f func(CaptureStats) float64) prometheus.Collector {
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(stats()) })
		}
		counter := func(name, help string, f func(CaptureStats) float64) prometheus.Collector {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return f(stats()) })
		}
		reg.MustRegister(
			gauge("foundry_capture_queue_depth", "Captured records waiting to be written.", func(s CaptureStats) float64 { return float64(s.QueueDepth) }),
			gauge("foundry_capture_lag_seconds", "How long the oldest record of the last written batch waited.", func(s CaptureStats) float64 { return s.LagSeconds }),
			counter("foundry_capture_written_total", "Captured records written to the store.", func(s CaptureStats) float64 { return float64(s.Written) }),
			counter("foundry_capture_spilled_total", "Captured records spilled to the local overflow file (replayed on the next start).", func(s CaptureStats) float64 { return float64(s.Spilled) }),
			counter("foundry_capture_replayed_total", "Spilled records replayed into the store at start.", func(s CaptureStats) float64 { return float64(s.Replayed) }),
			counter("foundry_capture_lost_total", "Captured records lost (store and spill file both failed, or unreadable spill lines).", func(s CaptureStats) float64 { return float64(s.Lost) }),
			counter("foundry_capture_write_errors_total", "Failed store writes (each retried, then spilled).", func(s CaptureStats) float64 { return float64(s.WriteErrors) }),
		)
	}
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// observe records a finished call.
func (m *metrics) observe(c *provider.Call) {
	m.requests.WithLabelValues(c.Endpoint, c.Provider, c.Model, strconv.Itoa(c.Status)).Inc()
	m.latency.WithLabelValues(c.Endpoint, c.Provider).Observe(c.Latency.Seconds())
	if c.TTFT > 0 {
		m.ttft.WithLabelValues(c.Endpoint, c.Provider).Observe(c.TTFT.Seconds())
	}
	if n := len(c.RawBody); n > 0 {
		m.bodyBytes.Observe(float64(n))
	}
	if c.ChatResponse != nil && c.ChatResponse.Usage != nil {
		u := c.ChatResponse.Usage
		m.tokens.WithLabelValues(c.Provider, c.Model, "prompt").Add(float64(u.PromptTokens))
		m.tokens.WithLabelValues(c.Provider, c.Model, "completion").Add(float64(u.CompletionTokens))
	}
}

func (m *metrics) upstreamError(ue *provider.UpstreamError) {
	status := strconv.Itoa(ue.Status)
	if ue.Timeout {
		status = "timeout"
	}
	m.upstream.WithLabelValues(ue.Provider, status).Inc()
}

func (m *metrics) reject(reason string) { m.rejected.WithLabelValues(reason).Inc() }
