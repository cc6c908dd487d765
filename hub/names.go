package hub

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// repoIDPattern is huggingface_hub's validate_repo_id: an optional
// namespace and a name of word characters, "-" and ".".
var repoIDPattern = regexp.MustCompile(`^(\b[\w\-.]+\b/)?\b[\w\-.]{1,96}\b$`)

var (
	commitPattern = regexp.MustCompile(`^[0-9a-f]{40}$`)
	etagPattern   = regexp.MustCompile(`^[0-9A-Za-z_\-.]{1,128}$`)
)

// ValidateRepoID rejects ids that are not "name" or "org/name" as the hub
// spells them, including any with ".." or "--" that could escape or confuse
// the cache layout.
func ValidateRepoID(id string) error {
	if !repoIDPattern.MatchString(id) || strings.Contains(id, "..") || strings.Contains(id, "--") ||
		strings.HasSuffix(id, ".git") {
		return fmt.Errorf("%w: %q is not a Hugging Face repo id: use ORG/NAME (letters, digits, '-', '_', '.'; no '..' or '--')", ErrInvalidName, id)
	}
	return nil
}

// ValidateRevision rejects revisions that could escape refs/ in the cache;
// "refs/pr/1"-style revisions are allowed.
func ValidateRevision(rev string) error {
	if rev == "" || strings.HasPrefix(rev, "/") || strings.ContainsAny(rev, "\\\x00") {
		return fmt.Errorf("%w: revision %q: use a branch, tag or commit sha", ErrInvalidName, rev)
	}
	for _, p := range strings.Split(rev, "/") {
		if p == "" || p == "." || p == ".." {
			return fmt.Errorf("%w: revision %q: use a branch, tag or commit sha", ErrInvalidName, rev)
		}
	}
	return nil
}

// ValidateFilename rejects repo file names that are absolute or climb out of
// the snapshot directory. Names come from the server too, so this is the
// guard against a hostile hub writing outside the cache.
func ValidateFilename(name string) error {
	bad := name == "" || strings.HasPrefix(name, "/") || strings.ContainsAny(name, "\\\x00") ||
		(len(name) >= 2 && name[1] == ':')
	if !bad {
		for _, p := range strings.Split(name, "/") {
			if p == "" || p == "." || p == ".." {
				bad = true
				break
			}
		}
	}
	if bad || path.Clean(name) != name {
		return fmt.Errorf("%w: file name %q is absolute or leaves its directory (refused)", ErrInvalidName, name)
	}
	return nil
}

// IsCommit reports whether rev is a full 40-hex commit sha.
func IsCommit(rev string) bool { return commitPattern.MatchString(rev) }

// RepoFolderName is a model repo's directory in the cache: "models--org--name".
func RepoFolderName(repo string) string {
	return RepoFolderNameOf(RepoTypeModel, repo)
}

// RepoFolderNameOf is the directory in the cache of a repo of repoType
// ("model" or "dataset"), as huggingface_hub names it: "datasets--org--name".
func RepoFolderNameOf(repoType, repo string) string {
	if repoType == "" {
		repoType = RepoTypeModel
	}
	return repoType + "s--" + strings.ReplaceAll(repo, "/", "--")
}

// ParseDatasetRef splits a dataset reference, "ORG/NAME[@rev]" or
// "datasets/ORG/NAME[@rev]" (the hub's URL path), into repo id and revision
// ("main" when absent) and validates both.
func ParseDatasetRef(s string) (repo, rev string, err error) {
	return ParseRepoRef(strings.TrimPrefix(s, "datasets/"))
}

// ParseRepoRef splits "ORG/NAME[@rev]" into repo id and revision ("main"
// when absent) and validates both.
func ParseRepoRef(s string) (repo, rev string, err error) {
	repo, rev = s, DefaultRevision
	if i := strings.LastIndex(s, "@"); i >= 0 {
		repo, rev = s[:i], s[i+1:]
	}
	if err := ValidateRepoID(repo); err != nil {
		return "", "", err
	}
	if err := ValidateRevision(rev); err != nil {
		return "", "", err
	}
	return repo, rev, nil
}

// normalizeEtag strips the weak prefix and quotes: W/"abc" -> abc.
func normalizeEtag(etag string) string {
	etag = strings.TrimSpace(etag)
	etag = strings.TrimPrefix(etag, "W/")
	return strings.Trim(etag, `"`)
}
