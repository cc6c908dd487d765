// Package hub downloads models and datasets from the Hugging Face hub into
// the cache that the Python huggingface_hub library uses, so a repo fetched
// by either is found by the other:
//
//	{cache}/models--{org}--{name}/           (datasets--{org}--{name}/ for dataset repos)
//	    blobs/{etag}                         file contents, named by sha256 (LFS) or git blob sha1
//	    snapshots/{commit}/{filename}        relative symlinks to ../../blobs/{etag}
//	    refs/{revision}                      the commit sha a branch or tag pointed to
//	{cache}/.locks/models--{org}--{name}/{etag}.lock
//
// A dataset repo is the same with Options.RepoType "dataset": its API is
// /api/datasets/{repo}/revision/{rev} and its files are under
// /datasets/{repo}/resolve/{rev}/{file}.
//
// Downloads resume from blobs/{etag}.incomplete with Range requests, are
// verified against the etag (sha256 for LFS files, git blob sha1 for small
// files) and renamed into place only when whole. Redirects to a CDN are
// followed without the Authorization header.
package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultEndpoint is the public hub, used when neither Options.Endpoint nor
// $HF_ENDPOINT is set.
const DefaultEndpoint = "https://huggingface.co"

// DefaultRevision is the branch pulled when none is named.
const DefaultRevision = "main"

// Repo types: which kind of repo a Client reads.
const (
	RepoTypeModel   = "model"
	RepoTypeDataset = "dataset"
)

// Options configure a Client. The zero value reads the same environment
// variables as huggingface_hub; a field that is set wins over its variable.
type Options struct {
	// RepoType is RepoTypeModel (the default, also when "") or
	// RepoTypeDataset: the kind of repo every call of the Client names.
	RepoType string

	// Endpoint is the hub's base URL: $HF_ENDPOINT, else https://huggingface.co.
	Endpoint string
	// Token is sent as "Authorization: Bearer" to the hub host only (never to
	// a CDN it redirects to): $HF_TOKEN, else the file $HF_TOKEN_PATH, else
	// $HF_HOME/token (where `huggingface-cli login` writes it).
	Token string
	// CacheDir is the hub cache: $HF_HUB_CACHE, else $HF_HOME/hub, else
	// $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
	CacheDir string
	// Offline resolves from the cache only (also on when HF_HUB_OFFLINE is 1/true/yes/on).
	Offline bool
	// HTTPClient sends the requests; its redirect policy is replaced by the
	// Client's own (which drops Authorization on other hosts). Nil: a client
	// with connect and header timeouts but no overall timeout.
	HTTPClient *http.Client

	// Include and Exclude filter a snapshot's files with fnmatch-style globs
	// ("*" also matches "/"; a pattern ending in "/" means everything below).
	// Empty Include means DefaultInclude plus DefaultExclude (see filter.go)
	// for a model repo, every file for a dataset repo.
	Include []string
	Exclude []string

	// Progress receives progress: a bar with rate and ETA when it is a
	// terminal, plain log lines otherwise. Nil: no progress output.
	Progress io.Writer
	// OnProgress, when set, is called with the bytes downloaded so far and the
	// total for the current pull (from several goroutines, serialised).
	OnProgress func(done, total int64)

	// Concurrency bounds parallel file downloads (default 4).
	Concurrency int
	// MaxRetries bounds retries of one request after a 5xx, 429 or dropped
	// connection (default 5); a retry that made progress does not count.
	MaxRetries int
	// RetryBackoff is the first wait between retries, doubled each time up to
	// 30 s (default 1 s).
	RetryBackoff time.Duration
}

// Client talks to one hub and one cache. Its methods are safe for concurrent use.
type Client struct {
	repoType string
	endpoint *url.URL
	token    string
	cacheDir string
	offline  bool
	http     *http.Client
	opts     Options
}

// New returns a Client for opts, filling unset fields from the environment.
func New(opts Options) (*Client, error) {
	if opts.Endpoint == "" {
		opts.Endpoint = os.Getenv("HF_ENDPOINT")
	}
	if opts.Endpoint == "" {
		opts.Endpoint = DefaultEndpoint
	}
	ep, err := url.Parse(strings.TrimRight(opts.Endpoint, "/"))
	if err != nil || (ep.Scheme != "http" && ep.Scheme != "https") || ep.Host == "" {
		return nil, fmt.Errorf("hub endpoint %q is not an http(s) URL: fix HF_ENDPOINT or --endpoint", opts.Endpoint)
	}
	switch opts.RepoType {
	case "":
		opts.RepoType = RepoTypeModel
	case RepoTypeModel, RepoTypeDataset:
	default:
		return nil, fmt.Errorf("hub repo type %q: want %q or %q", opts.RepoType, RepoTypeModel, RepoTypeDataset)
	}
	if opts.Token == "" {
		opts.Token = envToken()
	}
	if opts.CacheDir == "" {
		if opts.CacheDir, err = DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	if !opts.Offline {
		opts.Offline = envOffline()
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.MaxRetries <= 0 {
		opts.MaxRetries = 5
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = time.Second
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient()
	}
	// A copy, so the caller's client keeps its own redirect policy: the
	// Client follows redirects itself to decide where the token may go.
	own := *hc
	own.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{
		repoType: opts.RepoType,
		endpoint: ep,
		token:    opts.Token,
		cacheDir: opts.CacheDir,
		offline:  opts.Offline,
		http:     &own,
		opts:     opts,
	}, nil
}

// WithFilters returns a Client like c whose Snapshot fetches the files
// matching include and not exclude (see Options.Include).
func (c *Client) WithFilters(include, exclude []string) *Client {
	cp := *c
	cp.opts.Include, cp.opts.Exclude = include, exclude
	return &cp
}

// RepoType is the kind of repo the Client reads: RepoTypeModel or RepoTypeDataset.
func (c *Client) RepoType() string { return c.repoType }

// CacheDir is the hub cache directory the Client reads and writes.
func (c *Client) CacheDir() string { return c.cacheDir }

// Endpoint is the hub base URL the Client talks to.
func (c *Client) Endpoint() string { return c.endpoint.String() }

// Offline reports whether the Client resolves from the cache only.
func (c *Client) Offline() bool { return c.offline }

func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.ResponseHeaderTimeout = 60 * time.Second
	t.DisableCompression = true // byte ranges and sizes must refer to the file itself
	return &http.Client{Transport: t}
}

// HFHome is $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface.
func HFHome() (string, error) {
	if h := os.Getenv("HF_HOME"); h != "" {
		return expandHome(h)
	}
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
		return filepath.Join(x, "huggingface"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the Hugging Face cache: %w (set HF_HOME or HF_HUB_CACHE)", err)
	}
	return filepath.Join(home, ".cache", "huggingface"), nil
}

// DefaultCacheDir is $HF_HUB_CACHE, else $HF_HOME/hub (see HFHome).
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("HF_HUB_CACHE"); d != "" {
		return expandHome(d)
	}
	if d := os.Getenv("HUGGINGFACE_HUB_CACHE"); d != "" { // the older name, still honoured by huggingface_hub
		return expandHome(d)
	}
	home, err := HFHome()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, "hub"), nil
}

func expandHome(p string) (string, error) {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("expand %q: %w", p, err)
	}
	return filepath.Join(home, p[1:]), nil
}

// envToken finds the token the way huggingface_hub does: $HF_TOKEN (or the
// older $HUGGING_FACE_HUB_TOKEN), then the token file.
func envToken() string {
	for _, k := range []string{"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"} {
		if t := strings.TrimSpace(os.Getenv(k)); t != "" {
			return t
		}
	}
	path := os.Getenv("HF_TOKEN_PATH")
	if path == "" {
		home, err := HFHome()
		if err != nil {
			return ""
		}
		path = filepath.Join(home, "token")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func envOffline() bool {
	for _, k := range []string{"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"} {
		switch strings.ToUpper(strings.TrimSpace(os.Getenv(k))) {
		case "1", "ON", "YES", "TRUE":
			return true
		}
	}
	return false
}

// Errors a caller can test with errors.Is; the error text says what to do.
var (
	ErrRepoNotFound     = errors.New("repository not found")
	ErrRevisionNotFound = errors.New("revision not found")
	ErrEntryNotFound    = errors.New("file not found in repository")
	ErrGated            = errors.New("gated repository")
	ErrUnauthorized     = errors.New("authentication required or rejected")
	ErrNotCached        = errors.New("not in the local cache")
	ErrChecksum         = errors.New("checksum mismatch")
	ErrInvalidName      = errors.New("invalid name")
)

// Snapshot downloads repo at rev (default "main") with a Client configured
// from the environment and returns the snapshot directory.
func Snapshot(ctx context.Context, repo, rev string) (string, error) {
	c, err := New(Options{})
	if err != nil {
		return "", err
	}
	return c.Snapshot(ctx, repo, rev)
}

// ResolveModel turns what a user typed for a model into a local directory,
// with a Client configured from the environment: see Client.ResolveModel.
func ResolveModel(ctx context.Context, nameOrPath string) (string, error) {
	c, err := New(Options{})
	if err != nil {
		return "", err
	}
	return c.ResolveModel(ctx, nameOrPath)
}
