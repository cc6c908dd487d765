package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/store"
)

// RecordJSON is a captured call as the management API and `foundry logs
// --json` show it.
type RecordJSON struct {
	ID               string            `json:"id"`
	CreatedAt        time.Time         `json:"created_at"`
	Project          string            `json:"project,omitempty"`
	KeyID            string            `json:"key_id,omitempty"`
	Endpoint         string            `json:"endpoint"`
	Route            string            `json:"route"`
	Provider         string            `json:"provider,omitempty"`
	Model            string            `json:"model,omitempty"`
	Stream           bool              `json:"stream"`
	Status           int               `json:"status"`
	Error            string            `json:"error,omitempty"`
	LatencyMS        float64           `json:"latency_ms"`
	TTFTMS           float64           `json:"ttft_ms"`
	PromptTokens     int               `json:"prompt_tokens"`
	CompletionTokens int               `json:"completion_tokens"`
	UsageEstimated   bool              `json:"usage_estimated,omitempty"`
	CostUSD          float64           `json:"cost_usd"`
	User             string            `json:"user,omitempty"`
	Tags             []string          `json:"tags,omitempty"`
	Metadata         map[string]string `json:"metadata,omitempty"`
	ParentID         string            `json:"parent_id,omitempty"`
	Attempts         int               `json:"attempts,omitempty"`
	Request          json.RawMessage   `json:"request,omitempty"`
	Response         json.RawMessage   `json:"response,omitempty"`
	Feedback         *FeedbackJSON     `json:"feedback,omitempty"`
}

// FeedbackJSON is feedback on a call, as sent to POST /api/v1/feedback.
type FeedbackJSON struct {
	RequestID string    `json:"request_id"`
	Score     *float64  `json:"score,omitempty"`
	Label     string    `json:"label,omitempty"`
	Comment   string    `json:"comment,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// ViewRecord converts a stored record to its JSON view; withBodies keeps
// the request and response bodies.
func ViewRecord(r store.RecordWithFeedback, withBodies bool) RecordJSON {
	v := RecordJSON{ID: r.ID, CreatedAt: r.CreatedAt, Project: r.Project, KeyID: r.KeyID, Endpoint: r.Endpoint,
		Route: r.Route, Provider: r.Provider, Model: r.Model, Stream: r.Stream, Status: r.Status, Error: r.Error,
		LatencyMS: ms(r.Latency), TTFTMS: ms(r.TTFT), PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens,
		UsageEstimated: r.UsageEstimated, CostUSD: r.CostUSD, User: r.User, Tags: r.Tags, Metadata: r.Metadata,
		ParentID: r.ParentID, Attempts: r.Attempts}
	if withBodies {
		v.Request, v.Response = r.Request, r.Response
	}
	if f := r.Feedback; f != nil {
		v.Feedback = &FeedbackJSON{RequestID: f.RequestID, Score: f.Score, Label: f.Label, Comment: f.Comment, CreatedAt: f.CreatedAt}
	}
	return v
}

// ParseQuery reads record filters from URL query parameters (the management
// API's and `foundry logs`' shared vocabulary): since, until (RFC 3339, a
// Unix time, or a duration ago such as 24h), model, provider, route, tag
// (all of them), status (ok, error, or a code), feedback (true/false),
// min_score, user, project, metadata (k=v), cursor, limit. Lists accept
// repeated parameters or commas.
func ParseQuery(v map[string][]string, now time.Time) (store.Query, error) {
	var q store.Query
	list := func(name string) []string {
		var out []string
		for _, s := range v[name] {
			for _, p := range strings.Split(s, ",") {
				if p = strings.TrimSpace(p); p != "" {
					out = append(out, p)
				}
			}
		}
		return out
	}
	one := func(name string) string {
		if s := v[name]; len(s) > 0 {
			return strings.TrimSpace(s[len(s)-1])
		}
		return ""
	}
	var err error
	if q.Since, err = parseTime(one("since"), now); err != nil {
		return q, api.BadRequest("since", "since: "+err.Error())
	}
	if q.Until, err = parseTime(one("until"), now); err != nil {
		return q, api.BadRequest("until", "until: "+err.Error())
	}
	q.Models, q.Providers, q.Routes, q.Tags = list("model"), list("provider"), list("route"), list("tag")
	q.User, q.Project, q.Cursor = one("user"), one("project"), one("cursor")
	if s := one("status"); s != "" {
		if s != "ok" && s != "error" {
			if n, err := strconv.Atoi(s); err != nil || n < 100 || n > 599 {
				return q, api.BadRequest("status", fmt.Sprintf("status %q: use ok, error, or an HTTP status code such as 429", s))
			}
		}
		q.Status = s
	}
	if s := one("feedback"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return q, api.BadRequest("feedback", fmt.Sprintf("feedback %q: use true or false", s))
		}
		q.HasFeedback = &b
	}
	if s := one("min_score"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) {
			return q, api.BadRequest("min_score", fmt.Sprintf("min_score %q is not a number", s))
		}
		q.MinScore = &f
	}
	for _, kv := range list("metadata") {
		k, val, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return q, api.BadRequest("metadata", fmt.Sprintf("metadata %q: use key=value", kv))
		}
		if q.Metadata == nil {
			q.Metadata = map[string]string{}
		}
		q.Metadata[k] = val
	}
	if s := one("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return q, api.BadRequest("limit", fmt.Sprintf("limit %q: use a number from 1 to 1000", s))
		}
		q.Limit = n
	}
	return q, nil
}

// parseTime accepts RFC 3339, a date (2006-01-02), Unix seconds, or a
// duration ago ("90m", "24h", "7d").
func parseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n >= 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use RFC 3339 (2026-01-02T15:04:05Z), a date, Unix seconds, or a duration ago (24h, 7d)", s)
}

func (s *Server) needStore(w http.ResponseWriter) bool {
	if s.opts.Store == nil {
		api.WriteError(w, &api.Error{Status: http.StatusServiceUnavailable, Code: "store_disabled",
			Message: "this gateway runs without a store, so there are no logs, keys or feedback; start it with a database (FOUNDRY_DB)"})
		return false
	}
	return true
}

// recordList is the body of GET /api/v1/requests.
type recordList struct {
	Object     string       `json:"object"`
	Data       []RecordJSON `json:"data"`
	NextCursor string       `json:"next_cursor,omitempty"`
	HasMore    bool         `json:"has_more"`
}

func (s *Server) handleListRequests(w http.ResponseWriter, r *http.Request) {
	if !s.needStore(w) {
		return
	}
	q, err := ParseQuery(r.URL.Query(), time.Now())
	if err != nil {
		api.WriteError(w, err)
		return
	}
	if id := IdentityFrom(r.Context()); !id.Admin {
		q.Project = id.Project
	}
	page, err := s.opts.Store.ListRecords(r.Context(), q)
	if errors.Is(err, store.ErrInvalidQuery) {
		api.WriteError(w, api.BadRequest("", err.Error()))
		return
	}
	if err != nil {
		s.storeError(w, r, "list requests", err)
		return
	}
	bodies := r.URL.Query().Get("bodies") != "false"
	out := recordList{Object: "list", Data: make([]RecordJSON, 0, len(page.Records)), NextCursor: page.NextCursor, HasMore: page.NextCursor != ""}
	for _, rec := range page.Records {
		out.Data = append(out.Data, ViewRecord(rec, bodies))
	}
	api.WriteJSON(w, http.StatusOK, out)
}

// UsageJSON is one bucket of GET /api/v1/usage.
type UsageJSON struct {
	Start            time.Time `json:"start"`
	Provider         string    `json:"provider"`
	Model            string    `json:"model"`
	Requests         int64     `json:"requests"`
	Errors           int64     `json:"errors"`
	PromptTokens     int64     `json:"prompt_tokens"`
	CompletionTokens int64     `json:"completion_tokens"`
	CostUSD          float64   `json:"cost_usd"`
	MeanLatencyMS    float64   `json:"mean_latency_ms"`
}

// handleUsage rolls captured calls up per time bucket and model: the same
// filters as /api/v1/requests plus bucket (a duration, default 1h).
func (s *Server) handleUsage(w http.ResponseWriter, r *http.Request) {
	if !s.needStore(w) {
		return
	}
	v := r.URL.Query()
	q, err := ParseQuery(v, time.Now())
	if err != nil {
		api.WriteError(w, err)
		return
	}
	bucket := time.Hour
	if b := v.Get("bucket"); b != "" {
		if bucket, err = time.ParseDuration(b); err != nil || bucket < time.Second {
			api.WriteError(w, api.BadRequest("bucket", fmt.Sprintf("bucket %q: use a duration of at least 1s, such as 5m, 1h or 24h", b)))
			return
		}
	}
	rows, err := s.opts.Store.Usage(r.Context(), q, bucket)
	if errors.Is(err, store.ErrInvalidQuery) {
		api.WriteError(w, api.BadRequest("", err.Error()))
		return
	}
	if err != nil {
		s.storeError(w, r, "usage", err)
		return
	}
	out := struct {
		Object        string      `json:"object"`
		BucketSeconds float64     `json:"bucket_seconds"`
		Data          []UsageJSON `json:"data"`
	}{Object: "list", BucketSeconds: bucket.Seconds(), Data: make([]UsageJSON, 0, len(rows))}
	for _, u := range rows {
		j := UsageJSON{Start: u.Start, Provider: u.Provider, Model: u.Model, Requests: u.Requests, Errors: u.Errors,
			PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, CostUSD: u.CostUSD}
		if u.Requests > 0 {
			j.MeanLatencyMS = ms(u.Latency / time.Duration(u.Requests))
		}
		out.Data = append(out.Data, j)
	}
	api.WriteJSON(w, http.StatusOK, out)
}

func (s *Server) handleGetRequest(w http.ResponseWriter, r *http.Request) {
	if !s.needStore(w) {
		return
	}
	id := r.PathValue("id")
	rec, err := s.getRecord(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		api.WriteError(w, &api.Error{Status: http.StatusNotFound, Code: "request_not_found",
			Message: fmt.Sprintf("no captured request %q: ids come from the X-Request-Id response header", id)})
		return
	}
	if err != nil {
		s.storeError(w, r, "get request", err)
		return
	}
	api.WriteJSON(w, http.StatusOK, ViewRecord(rec, true))
}

// getRecord looks a record up, flushing capture once when it is not there
// yet (it may still be queued).
func (s *Server) getRecord(ctx context.Context, id string) (store.RecordWithFeedback, error) {
	rec, err := s.opts.Store.GetRecord(ctx, id)
	if errors.Is(err, store.ErrNotFound) && s.opts.Flusher != nil {
		if ferr := s.opts.Flusher.Flush(ctx); ferr == nil {
			rec, err = s.opts.Store.GetRecord(ctx, id)
		}
	}
	return rec, err
}

func (s *Server) storeError(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.Error(what, "id", RequestID(r.Context()), "err", err)
	api.WriteError(w, &api.Error{Status: http.StatusInternalServerError, Type: "api_error", Code: "store_error",
		Message: fmt.Sprintf("%s: the store failed (%v); check the database and retry", what, err)})
}

// handleFeedback stores feedback on a call. The admin key may rate any call;
// a virtual key only calls of its own project.
func (s *Server) handleFeedback(w http.ResponseWriter, r *http.Request) {
	if !s.needStore(w) {
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	var f FeedbackJSON
	if err := api.DecodeStrict(body, &f); err != nil {
		api.WriteError(w, err)
		return
	}
	if f.RequestID == "" {
		api.WriteError(w, api.BadRequest("request_id", "request_id is required: use the X-Request-Id header of the call you rate"))
		return
	}
	if f.Score == nil && f.Label == "" && f.Comment == "" {
		api.WriteError(w, api.BadRequest("score", "feedback needs at least one of score, label or comment"))
		return
	}
	if f.Score != nil && (math.IsNaN(*f.Score) || math.IsInf(*f.Score, 0)) {
		api.WriteError(w, api.BadRequest("score", "score must be a finite number"))
		return
	}
	ctx := r.Context()
	rec, err := s.getRecord(ctx, f.RequestID)
	if errors.Is(err, store.ErrNotFound) {
		api.WriteError(w, &api.Error{Status: http.StatusNotFound, Code: "request_not_found",
			Message: fmt.Sprintf("no captured request %q to attach feedback to: use the X-Request-Id header of a call made through this gateway", f.RequestID)})
		return
	}
	if err != nil {
		s.storeError(w, r, "feedback", err)
		return
	}
	if id := IdentityFrom(ctx); !id.Admin && rec.Project != id.Project {
		api.WriteError(w, &api.Error{Status: http.StatusNotFound, Code: "request_not_found",
			Message: fmt.Sprintf("no captured request %q in this key's project", f.RequestID)})
		return
	}
	fb := store.Feedback{RequestID: f.RequestID, Score: f.Score, Label: f.Label, Comment: f.Comment, CreatedAt: time.Now().UTC()}
	if err := s.opts.Store.AddFeedback(ctx, fb); err != nil {
		s.storeError(w, r, "feedback", err)
		return
	}
	f.CreatedAt = fb.CreatedAt
	api.WriteJSON(w, http.StatusOK, f)
}

// KeyJSON is a virtual key as the API shows it. Secret is set only in the
// answer to its creation.
type KeyJSON struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Project    string     `json:"project"`
	Prefix     string     `json:"prefix"`
	Secret     string     `json:"key,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

func viewKey(k store.Key) KeyJSON {
	return KeyJSON{ID: k.ID, Name: k.Name, Project: k.Project, Prefix: k.Prefix, CreatedAt: k.CreatedAt, RevokedAt: k.RevokedAt, LastUsedAt: k.LastUsedAt}
}

// NewKey makes a virtual key: the record to store and the secret to show once.
func NewKey(name, project string) (store.Key, string) {
	var b [24]byte
	_, _ = rand.Read(b[:])
	secret := "fdy-" + hex.EncodeToString(b[:])
	var id [8]byte
	_, _ = rand.Read(id[:])
	k := store.Key{ID: "key_" + hex.EncodeToString(id[:]), Name: name, Project: project, Prefix: secret[:12],
		Hash: HashKey(secret), CreatedAt: time.Now().UTC()}
	return k, secret
}

func (s *Server) handleCreateKey(w http.ResponseWriter, r *http.Request) {
	if !s.needStore(w) {
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	var in struct {
		Name    string `json:"name"`
		Project string `json:"project"`
	}
	if len(body) > 0 {
		if err := api.DecodeStrict(body, &in); err != nil {
			api.WriteError(w, err)
			return
		}
	}
	if in.Project == "" {
		in.Project = "default"
	}
	k, secret := NewKey(in.Name, in.Project)
	if err := s.opts.Store.CreateKey(r.Context(), k); err != nil {
		s.storeError(w, r, "create key", err)
		return
	}
	s.keysExist.Store(true)
	v := viewKey(k)
	v.Secret = secret
	api.WriteJSON(w, http.StatusCreated, v)
}

func (s *Server) handleListKeys(w http.ResponseWriter, r *http.Request) {
	if !s.needStore(w) {
		return
	}
	keys, err := s.opts.Store.ListKeys(r.Context(), r.URL.Query().Get("project"))
	if err != nil {
		s.storeError(w, r, "list keys", err)
		return
	}
	out := struct {
		Object string    `json:"object"`
		Data   []KeyJSON `json:"data"`
	}{Object: "list", Data: make([]KeyJSON, 0, len(keys))}
	for _, k := range keys {
		out.Data = append(out.Data, viewKey(k))
	}
	api.WriteJSON(w, http.StatusOK, out)
}

func (s *Server) handleRevokeKey(w http.ResponseWriter, r *http.Request) {
	if !s.needStore(w) {
		return
	}
	id := r.PathValue("id")
	err := s.opts.Store.RevokeKey(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		api.WriteError(w, &api.Error{Status: http.StatusNotFound, Code: "key_not_found",
			Message: fmt.Sprintf("no key %q: list keys with GET /api/v1/keys or `foundry keys list`", id)})
		return
	}
	if err != nil {
		s.storeError(w, r, "revoke key", err)
		return
	}
	// Forget cached lookups so the revocation takes effect at once on this
	// replica (others notice within keyCacheTTL).
	s.keyCache.Clear()
	api.WriteJSON(w, http.StatusOK, map[string]any{"id": id, "revoked": true})
}
