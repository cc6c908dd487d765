package hub

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
)

var linkSeq atomic.Int64 // tells apart temporary links made at once in one process

// repoDir is {cache}/models--org--name (datasets--org--name for datasets).
func (c *Client) repoDir(repo string) string {
	return filepath.Join(c.cacheDir, RepoFolderNameOf(c.repoType, repo))
}

// label is how messages name repo: "org/name" for a model,
// "datasets/org/name" for a dataset (its path on the hub).
func (c *Client) label(repo string) string {
	if c.repoType == RepoTypeDataset {
		return "datasets/" + repo
	}
	return repo
}

// SnapshotDir is where the files of repo at commit live in the cache (it
// may not exist yet).
func (c *Client) SnapshotDir(repo, commit string) string {
	return filepath.Join(c.repoDir(repo), "snapshots", commit)
}

func (c *Client) blobPath(repo, etag string) string {
	return filepath.Join(c.repoDir(repo), "blobs", etag)
}

func (c *Client) lockPath(repo, etag string) string {
	return filepath.Join(c.cacheDir, ".locks", RepoFolderNameOf(c.repoType, repo), etag+".lock")
}

func (c *Client) refPath(repo, rev string) string {
	return filepath.Join(c.repoDir(repo), "refs", filepath.FromSlash(rev))
}

// pointerPresent reports whether snapshots/{commit}/{file} exists and
// resolves to a file (a dangling symlink does not count).
func (c *Client) pointerPresent(repo, commit, file string) bool {
	st, err := os.Stat(filepath.Join(c.SnapshotDir(repo, commit), filepath.FromSlash(file)))
	return err == nil && st.Mode().IsRegular()
}

// writeRef records that rev pointed at commit, as huggingface_hub does for
// branches and tags (never for a commit sha itself). Written atomically.
func (c *Client) writeRef(repo, rev, commit string) error {
	if rev == commit {
		return nil
	}
	p := c.refPath(repo, rev)
	if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == commit {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("record ref %s of %s: %w", rev, repo, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".ref-*")
	if err != nil {
		return fmt.Errorf("record ref %s of %s: %w", rev, repo, err)
	}
	_, werr := tmp.WriteString(commit)
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp.Name(), 0o644)
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), p)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("record ref %s of %s: %w", rev, repo, werr)
	}
	return nil
}

// cachedCommit finds the commit rev stands for using the cache only: a
// commit sha names itself, a branch or tag is read from refs/.
func (c *Client) cachedCommit(repo, rev string) (string, error) {
	if IsCommit(rev) {
		return rev, nil
	}
	b, err := os.ReadFile(c.refPath(repo, rev))
	if err != nil {
		return "", err
	}
	commit := strings.TrimSpace(string(b))
	if !IsCommit(commit) {
		return "", fmt.Errorf("%s holds %q, not a commit sha (delete it and pull again)", c.refPath(repo, rev), commit)
	}
	return commit, nil
}

// Cached returns the snapshot directory of repo at rev from the cache alone,
// without touching the network; the error wraps ErrNotCached when it is
// not there. It does not check that every file of the revision is present.
func (c *Client) Cached(repo, rev string) (string, error) {
	if err := ValidateRepoID(repo); err != nil {
		return "", err
	}
	if rev == "" {
		rev = DefaultRevision
	}
	if err := ValidateRevision(rev); err != nil {
		return "", err
	}
	if _, err := os.Stat(c.repoDir(repo)); err != nil {
		return "", fmt.Errorf("%s is not in the cache %s: %w", repo, c.cacheDir, ErrNotCached)
	}
	commit, err := c.cachedCommit(repo, rev)
	if err != nil {
		return "", fmt.Errorf("revision %q of %s is not in the cache %s (%v): %w", rev, repo, c.cacheDir, err, ErrNotCached)
	}
	dir := c.SnapshotDir(repo, commit)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return "", fmt.Errorf("snapshot %s of %s@%s is not in the cache %s: %w", commit, repo, rev, c.cacheDir, ErrNotCached)
	}
	return dir, nil
}

// link points snapshots/{commit}/{file} at blobs/{etag} with a relative
// symlink (../../blobs/{etag}, one more ../ per directory in file), replacing
// whatever was there atomically.
func (c *Client) link(repo, commit, file, etag string) (string, error) {
	pointer := filepath.Join(c.SnapshotDir(repo, commit), filepath.FromSlash(file))
	if err := os.MkdirAll(filepath.Dir(pointer), 0o755); err != nil {
		return "", fmt.Errorf("create snapshot folder for %s: %w", file, err)
	}
	rel, err := filepath.Rel(filepath.Dir(pointer), c.blobPath(repo, etag))
	if err != nil {
		return "", fmt.Errorf("link %s: %w", file, err)
	}
	if cur, err := os.Readlink(pointer); err == nil && cur == rel {
		return pointer, nil
	}
	tmp := fmt.Sprintf("%s.%d-%d.tmp-link", pointer, os.Getpid(), linkSeq.Add(1))
	os.Remove(tmp)
	if err := os.Symlink(rel, tmp); err != nil {
		return "", fmt.Errorf("link %s into the snapshot: %w (does the cache's file system support symlinks?)", file, err)
	}
	if err := os.Rename(tmp, pointer); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("link %s into the snapshot: %w", file, err)
	}
	return pointer, nil
}
