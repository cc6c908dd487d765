package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// RepoInfo is the hub's answer to GET /api/models/{repo}/revision/{rev}
// (/api/datasets/... for a dataset repo).
type RepoInfo struct {
	ID       string     `json:"id"`
	SHA      string     `json:"sha"` // the commit the revision points to
	Private  bool       `json:"private"`
	Siblings []RepoFile `json:"siblings"`
}

// RepoFile is one file of a revision; Size, BlobID and LFS are filled when
// the hub was asked for blob metadata (?blobs=true), as this client does.
type RepoFile struct {
	Name   string   `json:"rfilename"`
	Size   int64    `json:"size,omitempty"`
	BlobID string   `json:"blobId,omitempty"`
	LFS    *LFSInfo `json:"lfs,omitempty"`
}

// LFSInfo describes a file stored with git-lfs.
type LFSInfo struct {
	SHA256      string `json:"sha256"`
	Size        int64  `json:"size"`
	PointerSize int64  `json:"pointerSize"`
}

// FileMeta is what a HEAD on a resolve URL says about one file.
type FileMeta struct {
	Commit   string // X-Repo-Commit
	Etag     string // X-Linked-Etag or ETag, unquoted: sha256 for LFS files, git blob sha1 otherwise
	Size     int64  // X-Linked-Size or Content-Length; -1 when unknown
	Location string // where to GET the bytes: the CDN URL for LFS files, else the resolve URL
}

// Revision asks the hub which commit rev (a branch, tag or sha) of repo is
// and which files it holds.
func (c *Client) Revision(ctx context.Context, repo, rev string) (*RepoInfo, error) {
	if err := ValidateRepoID(repo); err != nil {
		return nil, err
	}
	if rev == "" {
		rev = DefaultRevision
	}
	if err := ValidateRevision(rev); err != nil {
		return nil, err
	}
	if c.offline {
		return nil, fmt.Errorf("look up %s@%s: offline mode is on (HF_HUB_OFFLINE): %w", repo, rev, ErrNotCached)
	}
	u := c.endpoint.String() + "/api/" + c.repoType + "s/" + repo + "/revision/" + url.PathEscape(rev) + "?blobs=true"
	r := request{method: http.MethodGet, url: u, repo: repo, rev: rev, follow: true}
	resp, err := c.doRetry(ctx, r)
	if err != nil {
		return nil, wrapNetErr(err, c, "look up "+repo+"@"+rev)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, c.statusError(resp, r)
	}
	var info RepoInfo
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&info); err != nil {
		return nil, fmt.Errorf("look up %s@%s: the hub's answer is not the expected JSON (%v): is HF_ENDPOINT=%s a Hugging Face hub?", repo, rev, err, c.endpoint)
	}
	if !IsCommit(info.SHA) {
		return nil, fmt.Errorf("look up %s@%s: the hub returned commit %q, not a 40-hex sha: is HF_ENDPOINT=%s a Hugging Face hub?", repo, rev, info.SHA, c.endpoint)
	}
	for _, f := range info.Siblings {
		if err := ValidateFilename(f.Name); err != nil {
			return nil, fmt.Errorf("look up %s@%s: the hub listed an unsafe file: %w", repo, rev, err)
		}
	}
	return &info, nil
}

// resolveURL is {endpoint}/{repo}/resolve/{rev}/{file} ({endpoint}/datasets/{repo}/...
// for a dataset), rev escaped whole (so "refs/pr/1" stays one segment) and
// file escaped per segment.
func (c *Client) resolveURL(repo, rev, file string) string {
	segs := strings.Split(file, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return c.endpoint.String() + "/" + c.label(repo) + "/resolve/" + url.PathEscape(rev) + "/" + strings.Join(segs, "/")
}

// FileMetadata HEADs one file as huggingface_hub's get_hf_file_metadata does.
func (c *Client) FileMetadata(ctx context.Context, repo, rev, file string) (FileMeta, error) {
	if err := ValidateRepoID(repo); err != nil {
		return FileMeta{}, err
	}
	if err := ValidateFilename(file); err != nil {
		return FileMeta{}, err
	}
	u := c.resolveURL(repo, rev, file)
	r := request{method: http.MethodHead, url: u, repo: repo, rev: rev, file: file}
	resp, err := c.doRetry(ctx, r)
	if err != nil {
		return FileMeta{}, wrapNetErr(err, c, "look up "+file+" in "+repo)
	}
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return FileMeta{}, c.statusError(resp, r)
	}
	h := resp.Header
	m := FileMeta{Commit: h.Get("X-Repo-Commit"), Size: -1, Location: u}
	m.Etag = normalizeEtag(h.Get("X-Linked-Etag"))
	if m.Etag == "" {
		m.Etag = normalizeEtag(h.Get("ETag"))
	}
	size := h.Get("X-Linked-Size")
	if size == "" {
		size = h.Get("Content-Length")
	}
	if n, err := strconv.ParseInt(size, 10, 64); err == nil && n >= 0 {
		m.Size = n
	}
	if loc := h.Get("Location"); loc != "" && resp.StatusCode >= 300 {
		next, err := resp.Request.URL.Parse(loc)
		if err != nil {
			return FileMeta{}, fmt.Errorf("look up %s in %s: bad redirect %q", file, repo, loc)
		}
		m.Location = next.String()
	}
	if m.Etag == "" || !etagPattern.MatchString(m.Etag) || m.Etag == "." || m.Etag == ".." {
		return FileMeta{}, fmt.Errorf("look up %s in %s: the hub sent no usable ETag (%q), so the file cannot be cached or verified: is HF_ENDPOINT=%s a Hugging Face hub, or is a proxy stripping headers?", file, repo, m.Etag, c.endpoint)
	}
	if m.Commit != "" && !IsCommit(m.Commit) {
		return FileMeta{}, fmt.Errorf("look up %s in %s: the hub sent commit %q, not a 40-hex sha", file, repo, m.Commit)
	}
	return m, nil
}

// wrapNetErr adds what to do to a network failure (HTTP answers already say).
func wrapNetErr(err error, c *Client, what string) error {
	if _, ok := err.(*StatusError); ok {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: cannot reach %s: %w (check the network or HF_ENDPOINT; set HF_HUB_OFFLINE=1 to use the cache only)", what, c.endpoint, err)
}
