package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/foundryhq/foundry/hub"
)

// HubScheme starts a file source that is a file of a Hugging Face dataset
// repo: hf://datasets/ORG/NAME[@rev]/PATH, the path huggingface_hub's
// HfFileSystem uses. A revision with "/" in it is percent-encoded
// (hf://datasets/org/data@refs%2Fconvert%2Fparquet/default/train/0000.parquet).
const HubScheme = "hf://"

// HubFile is one file of a dataset repo on the hub.
type HubFile struct {
	Repo string // ORG/NAME
	Rev  string // branch, tag or commit sha; "main" when the reference names none
	Path string // the file's path in the repo
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

// Examples fetches the file and reads it; its rows' Source is the hf://
// reference rather than the cache path.
func (s *HubSource) Examples(ctx context.Context, out *Out) error {
	path, err := s.Local(ctx)
	if err != nil {
		return err
	}
	ref := s.File.String()
	next := out.filter
	sub := &Out{ch: out.ch, sink: out.sink, rep: out.rep, progress: out.progress, filter: func(ex *Example) string {
		ex.Meta.Source = ref
		if next != nil {
			return next(ex)
		}
		return ""
	}}
	return (&FileSource{Path: path, Format: s.Format}).Examples(ctx, sub)
}

// Local returns the file's path in the hub cache, downloading it first
// when it is not there.
func (s *HubSource) Local(ctx context.Context) (string, error) {
	c, err := s.Hub.client()
	if err != nil {
		return "", fmt.Errorf("import %s: %w", s.File, err)
	}
	path, err := c.Download(ctx, s.File.Repo, s.File.Rev, s.File.Path)
	if err != nil {
		hint := ""
		if errors.Is(err, hub.ErrNotCached) {
			hint = fmt.Sprintf(" (fetch it with network access: foundry pull --dataset %s@%s)", s.File.Repo, s.File.Rev)
		}
		return "", fmt.Errorf("import %s: %w%s", s.File, err, hint)
	}
	return path, nil
}
