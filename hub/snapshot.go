package hub

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
)

// Snapshot downloads the files of repo at rev (a branch, tag or commit sha;
// default "main") that pass the Client's Include/Exclude filters, like
// huggingface_hub's snapshot_download, and returns the snapshot directory.
// Files already in the snapshot are not fetched again; blobs shared with
// other revisions are linked, not downloaded. Offline, the directory comes
// from refs/ and snapshots/ alone. If the hub cannot be reached and the
// revision is cached, the cached snapshot is returned.
func (c *Client) Snapshot(ctx context.Context, repo, rev string) (string, error) {
	if rev == "" {
		rev = DefaultRevision
	}
	if err := ValidateRepoID(repo); err != nil {
		return "", err
	}
	if err := ValidateRevision(rev); err != nil {
		return "", err
	}
	if c.offline {
		dir, err := c.Cached(repo, rev)
		if err != nil {
			return "", fmt.Errorf("offline mode is on (HF_HUB_OFFLINE): %w; pull it with network access first or unset HF_HUB_OFFLINE", err)
		}
		return dir, nil
	}
	info, err := c.Revision(ctx, repo, rev)
	if err != nil {
		var se *StatusError
		if !errors.As(err, &se) && ctx.Err() == nil {
			if dir, cerr := c.Cached(repo, rev); cerr == nil {
				return dir, nil // hub unreachable: huggingface_hub falls back to the cache too
			}
		}
		return "", err
	}
	commit := info.SHA
	names := make([]string, 0, len(info.Siblings))
	for _, f := range info.Siblings {
		names = append(names, f.Name)
	}
	include := c.opts.Include
	if len(include) == 0 && c.repoType == RepoTypeDataset {
		include = []string{"*"} // a dataset repo's files are all data: no default selection
	}
	filter := newFileFilter(include, c.opts.Exclude, names)
	var want []string
	for _, n := range names {
		if filter.match(n) {
			want = append(want, n)
		}
	}
	sort.Strings(want)
	if len(want) == 0 {
		return "", fmt.Errorf("no file of %s@%s matches the filters (include %s, exclude %s); the repo has: %s",
			c.label(repo), rev, patterns(include, DefaultInclude), patterns(c.opts.Exclude, nil), preview(names))
	}
	var missing []string
	for _, n := range want {
		if !c.pointerPresent(repo, commit, n) {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		if err := c.fetchAll(ctx, repo, commit, missing); err != nil {
			return "", err
		}
	}
	if err := c.writeRef(repo, rev, commit); err != nil {
		return "", err
	}
	return c.SnapshotDir(repo, commit), nil
}

// fetchAll HEADs then downloads files of repo at commit, Concurrency at a
// time, with one progress bar over all of them. The first failure cancels
// the rest; their partial files stay for the next pull to resume.
func (c *Client) fetchAll(ctx context.Context, repo, commit string, files []string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	metas := make([]FileMeta, len(files))
	if err := c.parallel(ctx, cancel, len(files), func(i int) error {
		m, err := c.FileMetadata(ctx, repo, commit, files[i])
		metas[i] = m
		return err
	}); err != nil {
		return err
	}
	var total int64
	for _, m := range metas {
		total += max(m.Size, 0)
	}
	p := c.newProgress(c.label(repo), total, len(files))
	err := c.parallel(ctx, cancel, len(files), func(i int) error {
		if err := c.fetchBlob(ctx, repo, files[i], metas[i], p); err != nil {
			return err
		}
		_, err := c.link(repo, commit, files[i], metas[i].Etag)
		return err
	})
	p.finish(err)
	return err
}

// parallel runs f(0..n-1), Concurrency at a time, and returns the first
// error (cancelling the others through cancel).
func (c *Client) parallel(ctx context.Context, cancel context.CancelFunc, n int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		sem   = make(chan struct{}, c.opts.Concurrency)
	)
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(i); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

func patterns(p, def []string) string {
	if len(p) == 0 {
		p = def
	}
	if len(p) == 0 {
		return "none"
	}
	return strings.Join(p, ",")
}

func preview(names []string) string {
	if len(names) == 0 {
		return "no files"
	}
	if len(names) > 12 {
		return strings.Join(names[:12], ", ") + fmt.Sprintf(", ... (%d files)", len(names))
	}
	return strings.Join(names, ", ")
}

// ResolveModel turns what a user typed for a model into a local directory:
//   - an existing directory (absolute or relative) is used as is;
//   - "ORG/NAME[@rev]" (rev default "main") already in the cache is used
//     without touching the network (run `foundry pull` to update a branch);
//   - otherwise it is downloaded with Snapshot (unless offline).
func (c *Client) ResolveModel(ctx context.Context, nameOrPath string) (string, error) {
	if nameOrPath == "" {
		return "", fmt.Errorf("no model given: pass a local directory or a Hugging Face id ORG/NAME[@rev]")
	}
	if st, err := os.Stat(nameOrPath); err == nil {
		if !st.IsDir() {
			return "", fmt.Errorf("model %q is a file: pass the directory holding config.json and the .safetensors", nameOrPath)
		}
		return nameOrPath, nil
	}
	if looksLikePath(nameOrPath) {
		return "", fmt.Errorf("model directory %q does not exist", nameOrPath)
	}
	repo, rev, err := ParseRepoRef(nameOrPath)
	if err != nil {
		return "", fmt.Errorf("model %q is neither a local directory nor a Hugging Face id: %w", nameOrPath, err)
	}
	if dir, err := c.Cached(repo, rev); err == nil {
		return dir, nil
	}
	return c.Snapshot(ctx, repo, rev)
}

func looksLikePath(s string) bool {
	return strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") ||
		strings.HasPrefix(s, "~") || s == "." || s == ".." || strings.Count(s, "/") > 1 && !strings.Contains(s, "@")
}
