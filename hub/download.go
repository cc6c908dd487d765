package hub

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// errRestart means the partial file was discarded and the download should
// start again from byte 0 (counts as a retry).
var errRestart = errors.New("partial download discarded, restarting")

// Download fetches one file of repo at rev into the cache (like
// huggingface_hub's hf_hub_download) and returns its path in the snapshot.
// A file already in the snapshot of a commit sha is returned without
// network; offline, branches and tags are resolved through refs/.
func (c *Client) Download(ctx context.Context, repo, rev, file string) (string, error) {
	if rev == "" {
		rev = DefaultRevision
	}
	if err := ValidateRepoID(repo); err != nil {
		return "", err
	}
	if err := ValidateRevision(rev); err != nil {
		return "", err
	}
	if err := ValidateFilename(file); err != nil {
		return "", err
	}
	pointer := func(commit string) string {
		return filepath.Join(c.SnapshotDir(repo, commit), filepath.FromSlash(file))
	}
	if c.offline {
		dir, err := c.Cached(repo, rev)
		if err != nil {
			return "", fmt.Errorf("offline mode is on (HF_HUB_OFFLINE): %w; pull it with network access first", err)
		}
		if !c.pointerPresent(repo, filepath.Base(dir), file) {
			return "", fmt.Errorf("offline mode is on (HF_HUB_OFFLINE) and %s is not in the cached snapshot %s: %w", file, dir, ErrNotCached)
		}
		return pointer(filepath.Base(dir)), nil
	}
	if IsCommit(rev) && c.pointerPresent(repo, rev, file) {
		return pointer(rev), nil
	}
	m, err := c.FileMetadata(ctx, repo, rev, file)
	if err != nil {
		return "", err
	}
	commit := m.Commit
	if commit == "" {
		if !IsCommit(rev) {
			return "", fmt.Errorf("look up %s in %s@%s: the hub sent no X-Repo-Commit header: is HF_ENDPOINT=%s a Hugging Face hub?", file, repo, rev, c.endpoint)
		}
		commit = rev
	}
	if !c.pointerPresent(repo, commit, file) {
		p := c.newProgress(c.label(repo), max(m.Size, 0), 1)
		err := c.fetchBlob(ctx, repo, file, m, p)
		p.finish(err)
		if err != nil {
			return "", err
		}
		if _, err := c.link(repo, commit, file, m.Etag); err != nil {
			return "", err
		}
	}
	if err := c.writeRef(repo, rev, commit); err != nil {
		return "", err
	}
	return pointer(commit), nil
}

// fetchBlob makes blobs/{etag} hold file's verified bytes, resuming from
// blobs/{etag}.incomplete, under the blob's lock.
func (c *Client) fetchBlob(ctx context.Context, repo, file string, m FileMeta, p *progress) error {
	blob := c.blobPath(repo, m.Etag)
	if fileExists(blob) {
		p.add(max(m.Size, 0))
		p.fileDone(file)
		return nil
	}
	unlock, err := fileLock(ctx, c.lockPath(repo, m.Etag))
	if err != nil {
		return fmt.Errorf("download %s from %s: %w", file, repo, err)
	}
	defer unlock()
	if fileExists(blob) { // another pull finished it while we waited
		p.add(max(m.Size, 0))
		p.fileDone(file)
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		return fmt.Errorf("download %s from %s: create blobs folder: %w", file, repo, err)
	}
	inc := blob + ".incomplete"
	counted := int64(0) // bytes of this file already reported to p (= the partial file's length)
	best := int64(-1)   // the longest the partial file has been after a failed attempt
	for attempt := 0; ; {
		err := c.fetchOnce(ctx, repo, file, m, inc, p, &counted)
		if err == nil {
			break
		}
		if !errors.Is(err, errRestart) && !retryable(ctx, err) {
			return fmt.Errorf("download %s from %s: %w", file, repo, err)
		}
		// Only attempts that got no further than before count towards the
		// limit, so a flaky connection still finishes a large file.
		if counted > best {
			best = counted
		} else {
			attempt++
		}
		if attempt > c.opts.MaxRetries {
			return fmt.Errorf("download %s from %s: gave up after %d retries: %w (run the pull again to resume from the partial file)", file, repo, c.opts.MaxRetries, err)
		}
		if werr := c.backoff(ctx, attempt); werr != nil {
			return fmt.Errorf("download %s from %s: %w", file, repo, werr)
		}
	}
	if err := verify(inc, m); err != nil {
		os.Remove(inc)
		p.add(-counted)
		return fmt.Errorf("download %s from %s: %w", file, repo, err)
	}
	if err := os.Rename(inc, blob); err != nil {
		return fmt.Errorf("download %s from %s: move into the cache: %w", file, repo, err)
	}
	p.fileDone(file)
	return nil
}

// fetchOnce makes one GET, appending to the partial file from where it
// stopped; *counted tracks the partial file's length.
func (c *Client) fetchOnce(ctx context.Context, repo, file string, m FileMeta, inc string, p *progress, counted *int64) error {
	f, err := os.OpenFile(inc, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open partial file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	have := st.Size()
	restart := func() error {
		p.add(-*counted)
		*counted = 0
		return f.Truncate(0)
	}
	if m.Size >= 0 && have > m.Size {
		if err := restart(); err != nil {
			return err
		}
		have = 0
	}
	if have != *counted { // bytes left by an earlier, interrupted pull
		p.add(have - *counted)
		*counted = have
	}
	if m.Size >= 0 && have == m.Size {
		return nil
	}
	hdr := http.Header{}
	if have > 0 {
		hdr.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	resp, err := c.do(ctx, request{method: http.MethodGet, url: m.Location, header: hdr, file: file, follow: true})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent:
		if start, ok := contentRangeStart(resp.Header.Get("Content-Range")); !ok || start != have {
			restart()
			return fmt.Errorf("%w: the server answered range %q for bytes=%d-", errRestart, resp.Header.Get("Content-Range"), have)
		}
	case resp.StatusCode == http.StatusOK:
		if have > 0 { // the server ignored Range: take the whole file
			if err := restart(); err != nil {
				return err
			}
			have = 0
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		restart()
		return fmt.Errorf("%w: the server refused to resume at byte %d", errRestart, have)
	case !c.sameHost(resp.Request.URL) && (resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized):
		// A presigned CDN link that expired or was refused: not the user's token.
		return fmt.Errorf("the download server %s refused the link for %s (HTTP %d; it may have expired): run the pull again to get a fresh link and resume", resp.Request.URL.Host, file, resp.StatusCode)
	default:
		return c.statusError(resp, request{method: http.MethodGet, url: m.Location, repo: repo, file: file})
	}
	if _, err := f.Seek(have, io.SeekStart); err != nil {
		return err
	}
	n, err := io.Copy(f, &countingReader{r: resp.Body, onRead: func(k int) {
		p.add(int64(k))
		*counted += int64(k)
	}})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted after %d bytes (the next pull resumes from there): %w", have+n, ctx.Err())
		}
		return fmt.Errorf("connection dropped after %d bytes: %w", have+n, err)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if m.Size >= 0 && have+n < m.Size {
		return fmt.Errorf("connection ended after %d of %d bytes: %w", have+n, m.Size, io.ErrUnexpectedEOF)
	}
	return nil
}

// verify checks the finished partial file against the etag: sha256 for LFS
// files (64 hex), git blob sha1 for small files (40 hex). Other etags (some
// mirrors) are checked by size only.
func verify(path string, m FileMeta) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if m.Size >= 0 && st.Size() != m.Size {
		return fmt.Errorf("%w: got %d bytes, the hub announced %d; the partial file was deleted, run the pull again", ErrChecksum, st.Size(), m.Size)
	}
	var h hash.Hash
	algo := ""
	switch {
	case isHex(m.Etag, 64):
		h, algo = sha256.New(), "sha256"
	case isHex(m.Etag, 40):
		h, algo = sha1.New(), "git blob sha1"
		fmt.Fprintf(h, "blob %d\x00", st.Size())
	default:
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("hash %s: %w", path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != strings.ToLower(m.Etag) {
		return fmt.Errorf("%w: %s is %s, the hub's ETag says %s; the corrupt download was deleted, run the pull again (if it repeats, a proxy or mirror is altering the file)", ErrChecksum, algo, got, m.Etag)
	}
	return nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// contentRangeStart reads the first byte position of "bytes a-b/n".
func contentRangeStart(v string) (int64, bool) {
	v, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !ok {
		return 0, false
	}
	a, _, ok := strings.Cut(v, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(a, 10, 64)
	return n, err == nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

type countingReader struct {
	r      io.Reader
	onRead func(int)
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 {
		c.onRead(n)
	}
	return n, err
}
