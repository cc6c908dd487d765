// Package store defines Foundry's durable records — captured calls, feedback,
// API keys, datasets — and the Store interface that the sqlite and postgres
// packages implement. Everything above the store (gateway, dataset, train,
// eval, route, econ) talks to this interface, never to a driver.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a write expected a state that another writer
// changed first (a route version that is no longer the latest).
var ErrConflict = errors.New("conflict")

// ErrInvalidQuery is wrapped by the error for a Query a store cannot run: a
// malformed cursor or an unknown Status. HTTP handlers map it to 400.
var ErrInvalidQuery = errors.New("invalid query")

// Record is one captured API call: what was asked, what came back, and what it cost.
// Streams are stored reassembled into one response body.
type Record struct {
	ID        string    // request id, also returned to the client as X-Request-Id
	CreatedAt time.Time // when the request arrived (UTC)
	Project   string    // project of the virtual key; "" for the admin key / no auth
	KeyID     string    // id of the virtual key used; "" when none
	Endpoint  string    // "chat.completions", "embeddings", ...
	Route     string    // the model name the app asked for (a route or alias)
	Provider  string    // provider that finally answered (or failed): "openai", "anthropic", "engine", ...
	Model     string    // upstream model name actually called
	Stream    bool
	Status    int    // HTTP status returned to the client
	Error     string // error message when Status >= 400 or the stream broke
	Request   json.RawMessage
	Response  json.RawMessage // full response body; for streams, the reassembled completion

	Latency time.Duration // request arrival to last byte
	TTFT    time.Duration // time to first token (streams) or to first byte

	PromptTokens     int
	CompletionTokens int
	UsageEstimated   bool    // true when tokens were counted locally, not reported by upstream
	CostUSD          float64 // from the price table; 0 when unknown

	User     string            // the request's "user" field
	Tags     []string          // X-Foundry-Tags
	Metadata map[string]string // X-Foundry-Metadata and the body's "metadata"
	ParentID string            // links a shadow/escalation call to the call it came from
	Attempts int               // upstream attempts, retries and fallbacks included
}

// UsageBucket is the traffic and spend of one provider/model in one time bucket.
type UsageBucket struct {
	Start                          time.Time // bucket start (UTC)
	Provider, Model                string
	Requests, Errors               int64 // Errors: status >= 400
	PromptTokens, CompletionTokens int64
	CostUSD                        float64
	Latency                        time.Duration // sum over the bucket's requests; divide by Requests for the mean
}

// Feedback is a user's judgement of one captured call.
type Feedback struct {
	RequestID string
	Score     *float64 // any scale the app uses; curation filters on it
	Label     string
	Comment   string
	CreatedAt time.Time
}

// Key is a virtual API key. Only the hash of the secret is stored.
type Key struct {
	ID         string
	Name       string
	Project    string
	Prefix     string // first characters of the secret, to recognise it in lists
	Hash       string // hex sha256 of the full secret
	CreatedAt  time.Time
	RevokedAt  *time.Time
	LastUsedAt *time.Time
}

// RouteVersion is one version of a route's traffic policy. Versions of a
// route count up from 1; every change (a manual edit, a rollback) is a new
// version, so the history is the audit log.
type RouteVersion struct {
	Name      string          // the model name apps call, e.g. "support-bot"
	Version   int             // 1 for a new route, then the previous version + 1
	Policy    json.RawMessage // the policy as JSON, stored byte for byte
	Actor     string          // who made the change: a user, "api", "auto-rollback"
	Comment   string          // why
	CreatedAt time.Time
}

// Job is one background job's record, such as a training run. The store
// keeps the owner's full JSON in Record, byte for byte, and the few fields
// lists sort and filter on as columns; it does not interpret Record, so the
// store needs no import of the package that owns the job's shape.
type Job struct {
	ID      string
	Kind    string // what runs it: "train"
	Status  string // the owner's vocabulary: "queued", "running", "succeeded", "failed", "interrupted", ...
	Created time.Time
	Updated time.Time
	Record  json.RawMessage // the whole job as JSON; must be valid JSON
}

// JobQuery selects jobs. Zero fields do not filter.
type JobQuery struct {
	Kind   string
	Status []string // jobs in any of these statuses
	Limit  int      // 0 means 50, capped at 1000
}

// Query selects captured records. Zero fields do not filter.
type Query struct {
	Since, Until time.Time // CreatedAt in [Since, Until)
	Project      string
	Routes       []string
	Models       []string
	Providers    []string
	Tags         []string // records carrying all of these tags
	Metadata     map[string]string
	Status       string // "ok" (2xx), "error" (>= 400), or a numeric code such as "429"
	HasFeedback  *bool
	MinScore     *float64 // latest feedback's score >= MinScore
	User         string
	Cursor       string // opaque, from Page.NextCursor
	Limit        int    // page size; 0 means 50, capped at 1000

	// Lean lets ScanRecords leave out what a dataset build does not read:
	// its records then need carry only ID, CreatedAt, Endpoint, Route,
	// Provider, Model, Status, Error, Request, Response, Tags, Metadata and
	// the latest feedback (nil when none) with its Score; the other fields
	// may be zero. A store may ignore it. ListRecords and GetRecord do.
	Lean bool
}

// Page is one page of records, newest first.
type Page struct {
	Records    []RecordWithFeedback
	NextCursor string // "" when there are no more
}

// RecordWithFeedback is a record joined with its latest feedback, if any.
type RecordWithFeedback struct {
	Record
	Feedback *Feedback
}

// Store is Foundry's storage. Implementations must be safe for concurrent use.
// Times are stored in UTC with microsecond precision (finer digits are
// truncated); durations and request/response bodies round-trip exactly; text
// fields are stored as valid UTF-8, with NUL bytes and invalid sequences
// replaced by U+FFFD (PostgreSQL accepts nothing else).
type Store interface {
	// InsertRecords writes captured calls in one batch. Inserting an ID that
	// already exists is not an error and keeps the first copy (replays are idempotent).
	InsertRecords(ctx context.Context, recs []Record) error
	GetRecord(ctx context.Context, id string) (RecordWithFeedback, error)
	ListRecords(ctx context.Context, q Query) (Page, error)
	// ScanRecords streams every record matching q (Cursor and Limit ignored),
	// oldest first, without holding them all in memory.
	ScanRecords(ctx context.Context, q Query, fn func(RecordWithFeedback) error) error
	CountRecords(ctx context.Context, q Query) (int64, error)
	// Usage rolls the records matching q (Cursor and Limit ignored) up into
	// time buckets of width bucket (aligned to the Unix epoch), per provider
	// and model, oldest bucket first.
	Usage(ctx context.Context, q Query, bucket time.Duration) ([]UsageBucket, error)
	// DeleteRecordsBefore applies retention; it returns how many were removed.
	DeleteRecordsBefore(ctx context.Context, t time.Time) (int64, error)

	// AddFeedback stores feedback; ErrNotFound when the request id is unknown.
	AddFeedback(ctx context.Context, f Feedback) error

	CreateKey(ctx context.Context, k Key) error
	// KeyByHash returns the key, revoked or not (callers check RevokedAt);
	// ErrNotFound when no key has that hash.
	KeyByHash(ctx context.Context, hash string) (Key, error)
	// ListKeys lists a project's keys oldest first; project "" lists every key.
	ListKeys(ctx context.Context, project string) ([]Key, error)
	// RevokeKey and TouchKey return ErrNotFound for an unknown id. Revoking
	// twice keeps the first time; a touch older than the stored one is ignored.
	RevokeKey(ctx context.Context, id string) error
	TouchKey(ctx context.Context, id string, at time.Time) error

	// PutRoute stores rv as the next version of route rv.Name. rv.Version
	// must be the latest stored version + 1 (1 for a new route); otherwise
	// another writer got there first and the error wraps ErrConflict. A zero
	// CreatedAt means now.
	PutRoute(ctx context.Context, rv RouteVersion) error
	// GetRoute returns the latest version of a route, or ErrNotFound.
	GetRoute(ctx context.Context, name string) (RouteVersion, error)
	// ListRoutes returns the latest version of every route, by name.
	ListRoutes(ctx context.Context) ([]RouteVersion, error)
	// RouteHistory returns every version of a route, oldest first; ErrNotFound when it has none.
	RouteHistory(ctx context.Context, name string) ([]RouteVersion, error)

	// SaveJob inserts j, or replaces the job with j's ID (Kind, Status,
	// Updated and Record; Created stays as first saved). A zero Created or
	// Updated means now.
	SaveJob(ctx context.Context, j Job) error
	// GetJob returns a job, or ErrNotFound.
	GetJob(ctx context.Context, id string) (Job, error)
	// ListJobs returns the jobs matching q, newest Created first.
	ListJobs(ctx context.Context, q JobQuery) ([]Job, error)

	Close() error
}
