package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"path/filepath"
	"sort"
	"strings"

	"github.com/foundryhq/foundry/hub"
)

// HubScheme starts a file source that is a file of a Hugging Face dataset
// repo: hf://datasets/ORG/NAME[@rev]/PATH, the path huggingface_hub's
// HfFileSystem uses. A revision with "/" in it is percent-encoded
// (hf://datasets/org/data@refs%2Fconvert%2Fparquet/default/train/0000.parquet).
// PATH may be a glob ("*" also matches "/"), e.g. data/train-*.parquet for
// a sharded split: every matching file is read, in name order.
const HubScheme = "hf://"

// HubFile is one file of a dataset repo on the hub.
type HubFile struct {
	Repo string // ORG/NAME
	Rev  string // branch, tag or commit sha; "main" when the reference names none
	Path string // the file's path in the repo, or a glob of paths
}

// String is the file's hf:// reference.
func (f HubFile) String() string {
	return HubScheme + "datasets/" + f.Repo + "@" + url.PathEscape(f.Rev) + "/" + f.Path
}

// IsHubFile reports whether a file source names a hub file (hf://...).
func IsHubFile(s string) bool { return strings.HasPrefix(s, HubScheme) }

// ParseHubFile parses hf://datasets/ORG/NAME[@rev]/PATH.
func ParseHubFile(s string) (HubFile, error) {
	rest, ok := strings.CutPrefix(s, HubScheme+"datasets/")
	if !ok {
		return HubFile{}, fmt.Errorf("%q: a hub file is hf://datasets/ORG/NAME[@rev]/PATH (only dataset repos can be imported)", s)
	}
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) < 3 || parts[2] == "" {
		return HubFile{}, fmt.Errorf("%q: name the repo and the file in it: hf://datasets/ORG/NAME[@rev]/PATH, e.g. hf://datasets/org/data/train.parquet", s)
	}
	name, rev, hasRev := strings.Cut(parts[1], "@")
	f := HubFile{Repo: parts[0] + "/" + name, Rev: hub.DefaultRevision, Path: parts[2]}
	if hasRev {
		r, err := url.PathUnescape(rev)
		if err != nil || r == "" {
			return HubFile{}, fmt.Errorf("%q: revision %q: percent-encode a revision with '/' in it (refs%%2Fconvert%%2Fparquet)", s, rev)
		}
		f.Rev = r
	}
	if err := hub.ValidateRepoID(f.Repo); err != nil {
		return HubFile{}, fmt.Errorf("%q: %w", s, err)
	}
	if err := hub.ValidateRevision(f.Rev); err != nil {
		return HubFile{}, fmt.Errorf("%q: %w", s, err)
	}
	if err := hub.ValidateFilename(f.Path); err != nil {
		return HubFile{}, fmt.Errorf("%q: %w", s, err)
	}
	return f, nil
}

// HubOptions configure how a build reaches the hub for hf:// sources.
type HubOptions struct {
	// Client fetches the files; it must be for dataset repos
	// (hub.Options.RepoType "dataset"). Nil: one configured from the
	// environment like `foundry pull` (HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE
	// or HF_HOME, HF_HUB_OFFLINE), reporting to Progress.
	Client *hub.Client
	// Progress receives download progress when Client is nil (a bar on a
	// terminal, plain lines otherwise); nil shows none.
	Progress io.Writer
}

func (o HubOptions) client() (*hub.Client, error) {
	if o.Client != nil {
		if o.Client.RepoType() != hub.RepoTypeDataset {
			return nil, fmt.Errorf("the hub client reads %s repos; hf:// sources need one for dataset repos (hub.Options.RepoType %q)", o.Client.RepoType(), hub.RepoTypeDataset)
		}
		return o.Client, nil
	}
	return hub.New(hub.Options{RepoType: hub.RepoTypeDataset, Progress: o.Progress})
}

// HubSource imports one file of a Hugging Face dataset repo: it is
// downloaded into the hub cache (resumed, verified) unless the cache has
// it, then read like a local file. Offline (HF_HUB_OFFLINE=1) it comes
// from the cache alone.
type HubSource struct {
	File   HubFile
	Format string // "" detects it from the file's name and first line
	Hub    HubOptions
}

// Name is "select".
func (s *HubSource) Name() string { return "select" }

// Examples fetches the file (or the files a glob matches) and reads it;
// its rows' Source is the file's hf:// reference rather than the cache path.
func (s *HubSource) Examples(ctx context.Context, out *Out) error {
	files, err := s.Local(ctx)
	if err != nil {
		return err
	}
	next := out.filter
	for _, f := range files {
		ref := HubFile{Repo: s.File.Repo, Rev: s.File.Rev, Path: f.Path}.String()
		sub := &Out{ch: out.ch, sink: out.sink, rep: out.rep, progress: out.progress, filter: func(ex *Example) string {
			ex.Meta.Source = ref
			if next != nil {
				return next(ex)
			}
			return ""
		}}
		if err := (&FileSource{Path: f.Local, Format: s.Format}).Examples(ctx, sub); err != nil {
			return err
		}
	}
	return nil
}

// LocalFile is one file of a HubSource in the hub cache.
type LocalFile struct {
	Path  string // in the repo
	Local string // in the hub cache (a snapshot's symlink)
}

// Local returns the source's file (or the files its glob matches, in name
// order) in the hub cache, downloading what is not there.
func (s *HubSource) Local(ctx context.Context) ([]LocalFile, error) {
	c, err := s.Hub.client()
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", s.File, err)
	}
	fail := func(err error) ([]LocalFile, error) {
		hint := ""
		if errors.Is(err, hub.ErrNotCached) {
			hint = fmt.Sprintf(" (fetch it with network access: foundry pull --dataset %s@%s)", s.File.Repo, s.File.Rev)
		}
		return nil, fmt.Errorf("import %s: %w%s", s.File, err, hint)
	}
	if !hub.IsGlob(s.File.Path) {
		path, err := c.Download(ctx, s.File.Repo, s.File.Rev, s.File.Path)
		if err != nil {
			return fail(err)
		}
		return []LocalFile{{Path: s.File.Path, Local: path}}, nil
	}
	dir, err := c.WithFilters([]string{s.File.Path}, nil).Snapshot(ctx, s.File.Repo, s.File.Rev)
	if err != nil {
		return fail(err)
	}
	var files []LocalFile
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel = filepath.ToSlash(rel); hub.MatchGlob(s.File.Path, rel) {
			files = append(files, LocalFile{Path: rel, Local: p})
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	if len(files) == 0 {
		return fail(fmt.Errorf("no file in the cached snapshot %s matches %q: %w", dir, s.File.Path, hub.ErrNotCached))
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}
