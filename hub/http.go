package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

const maxRedirects = 10

// userAgent names Foundry to the hub the way huggingface_hub names itself.
const userAgent = "foundry-hub/1; hf_hub-compatible"

// request is one logical call: which repo/file it is for (for error text).
type request struct {
	method string
	url    string
	header http.Header
	repo   string
	rev    string
	file   string
	follow bool // follow redirects to other hosts (GET); HEAD stops at them
}

// sameHost reports whether u is the hub itself: the only host that gets the token.
func (c *Client) sameHost(u *url.URL) bool {
	return strings.EqualFold(u.Scheme, c.endpoint.Scheme) && strings.EqualFold(u.Host, c.endpoint.Host)
}

// do sends r, following redirects itself so the Authorization header goes
// to the hub host only. Relative (same-host) redirects are always followed,
// as huggingface_hub does for renamed repos; redirects to another host only
// when r.follow. The caller closes the body.
func (c *Client) do(ctx context.Context, r request) (*http.Response, error) {
	target, err := url.Parse(r.url)
	if err != nil {
		return nil, fmt.Errorf("bad URL %q: %w", r.url, err)
	}
	for hop := 0; ; hop++ {
		req, err := http.NewRequestWithContext(ctx, r.method, target.String(), nil)
		if err != nil {
			return nil, err
		}
		for k, v := range r.header {
			req.Header[k] = v
		}
		req.Header.Set("User-Agent", userAgent)
		req.Header.Set("Accept-Encoding", "identity")
		if c.token != "" && c.sameHost(target) {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode < 300 || resp.StatusCode > 399 || resp.StatusCode == http.StatusNotModified {
			return resp, nil
		}
		loc := resp.Header.Get("Location")
		if loc == "" {
			return resp, nil
		}
		next, err := target.Parse(loc)
		if err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("hub sent a bad redirect %q: %w", loc, err)
		}
		if !r.follow && !c.sameHost(next) {
			return resp, nil // HEAD: the caller reads X-Linked-* and Location from the redirect itself
		}
		if hop >= maxRedirects {
			resp.Body.Close()
			return nil, fmt.Errorf("%s %s: more than %d redirects", r.method, r.url, maxRedirects)
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		target = next
	}
}

// doRetry is do with retries on 5xx, 429 and connection errors.
func (c *Client) doRetry(ctx context.Context, r request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := c.do(ctx, r)
		if err == nil && !retryableStatus(resp.StatusCode) {
			return resp, nil
		}
		if err == nil {
			err = c.statusError(resp, r)
			resp.Body.Close()
		}
		if !retryable(ctx, err) || attempt >= c.opts.MaxRetries {
			return nil, err
		}
		if werr := c.backoff(ctx, attempt); werr != nil {
			return nil, err
		}
	}
}

func (c *Client) backoff(ctx context.Context, attempt int) error {
	d := c.opts.RetryBackoff << min(attempt, 10)
	d = min(d, 30*time.Second)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func retryableStatus(code int) bool {
	return code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout
}

// retryable reports whether trying again may succeed: server-side failures
// and dropped connections, not 4xx answers, bad checksums or cancellation.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var se *StatusError
	if errors.As(err, &se) {
		return retryableStatus(se.Status)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// StatusError is an unexpected HTTP answer from the hub or its CDN. It wraps
// one of the package's sentinel errors when the hub said which problem it is.
type StatusError struct {
	Status  int
	Code    string // the hub's X-Error-Code, e.g. "RepoNotFound", "GatedRepo"
	URL     string
	Message string // what failed and what to do next
	kind    error
}

func (e *StatusError) Error() string { return e.Message }
func (e *StatusError) Unwrap() error { return e.kind }

// statusError turns a non-success answer into an error that says what to do.
func (c *Client) statusError(resp *http.Response, r request) error {
	code := resp.Header.Get("X-Error-Code")
	hubMsg := resp.Header.Get("X-Error-Message")
	if hubMsg == "" {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		hubMsg = strings.TrimSpace(string(b))
	}
	e := &StatusError{Status: resp.StatusCode, Code: code, URL: r.url}
	name := c.label(r.repo)
	what := name
	if r.rev != "" {
		what += "@" + r.rev
	}
	tokenHint := "set HF_TOKEN (or run `huggingface-cli login`) with a token that can read it"
	if c.token != "" {
		tokenHint = "the token in use (HF_TOKEN or $HF_HOME/token) cannot read it: check it at " + c.endpoint.String() + "/settings/tokens"
	}
	switch {
	case code == "GatedRepo":
		e.kind = ErrGated
		if c.token == "" {
			e.Message = fmt.Sprintf("%s is a gated %s: accept its terms at %s/%s, then set HF_TOKEN to a read token of that account (or run `huggingface-cli login`)", r.repo, c.repoType, c.endpoint, name)
		} else {
			e.Message = fmt.Sprintf("%s is a gated %s and the token in use (HF_TOKEN or $HF_HOME/token) has no access: accept its terms at %s/%s with that token's account (some need the authors' approval), then retry", r.repo, c.repoType, c.endpoint, name)
		}
		hubMsg = "" // the hub's text says the same, less usefully
	case code == "RepoNotFound" || (resp.StatusCode == http.StatusNotFound && code == "" && r.file == ""):
		e.kind = ErrRepoNotFound
		e.Message = fmt.Sprintf("%s %s not found on %s: check the name; if it is private, %s", c.repoType, r.repo, c.endpoint, tokenHint)
		hubMsg = ""
	case code == "RevisionNotFound":
		e.kind = ErrRevisionNotFound
		e.Message = fmt.Sprintf("revision %q not found in %s: check the branch, tag or commit sha", r.rev, name)
	case code == "EntryNotFound" || resp.StatusCode == http.StatusNotFound:
		e.kind = ErrEntryNotFound
		e.Message = fmt.Sprintf("file %q not found in %s: check the file name and revision", r.file, what)
	case resp.StatusCode == http.StatusUnauthorized:
		e.kind = ErrUnauthorized
		if c.token == "" {
			e.Message = fmt.Sprintf("%s needs authentication (401): set HF_TOKEN to a read token from %s/settings/tokens", what, c.endpoint)
		} else {
			e.Message = fmt.Sprintf("%s rejected the token (401): check HF_TOKEN or $HF_HOME/token (create one at %s/settings/tokens)", c.endpoint, c.endpoint)
		}
	case resp.StatusCode == http.StatusForbidden:
		e.kind = ErrUnauthorized
		e.Message = fmt.Sprintf("access to %s forbidden (403): %s", what, tokenHint)
	default:
		e.Message = fmt.Sprintf("%s %s: HTTP %d", r.method, r.url, resp.StatusCode)
		if retryableStatus(resp.StatusCode) {
			e.Message += " (hub-side error: try again later)"
		}
	}
	if hubMsg != "" {
		e.Message += " [hub said: " + hubMsg + "]"
	}
	return e
}
