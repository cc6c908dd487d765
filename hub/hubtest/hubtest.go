// Package hubtest is a local fake of the Hugging Face hub for tests: the
// revision API, resolve URLs (HEAD and GET, with Range), LFS files served by
// a separate "CDN" server through 302 redirects carrying X-Linked-Etag and
// X-Linked-Size, private and gated repos that need a token, the hub's
// X-Error-Code answers, and injected faults (an error status, a connection
// cut after N bytes, a corrupted payload).
//
// Dataset repos are served like model repos, under the hub's dataset paths
// (/api/datasets/{id}/revision/{rev}, /datasets/{id}/resolve/{rev}/{file})
// with the same headers; the fake's methods name them "datasets/ORG/NAME"
// (Commit("datasets/org/data", "main", files), SetPrivate, Grant, Tag...).
//
// Both servers listen on 127.0.0.1 on different ports, so they are different
// hosts to a client: the CDN rejects requests carrying an Authorization
// header, as S3 presigned URLs do. Every request is recorded.
package hubtest

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// TB is the part of testing.TB the fake uses.
type TB interface {
	Helper()
	Cleanup(func())
}

// Request is one request as a server of the fake saw it.
type Request struct {
	Server   string // "hub" or "cdn"
	Method   string
	Path     string // unescaped
	RawQuery string
	Header   http.Header
}

// Fault makes one GET of a file's bytes fail; faults are queued per file
// name and consumed in order (HEAD requests do not consume them).
type Fault struct {
	Status    int   // answer with this HTTP status instead of the file (e.g. 500)
	DropAfter int64 // send this many body bytes, then cut the connection
	Corrupt   bool  // send the right number of bytes with one byte flipped
	// StallAfter sends this many body bytes, then sends nothing more until
	// the client goes away (for cancellation and timeout tests).
	StallAfter int64
	// IgnoreRange answers 200 with the whole file even to a Range request,
	// as some proxies do.
	IgnoreRange bool
}

// Hub is a fake hub at URL whose LFS files are served from CDNURL.
type Hub struct {
	URL    string // the hub endpoint, for HF_ENDPOINT / hub.Options.Endpoint
	CDNURL string // the CDN that LFS redirects point to
	// LFSThreshold: files at least this big, and every *.safetensors, *.bin,
	// *.gguf, *.pt file, are stored as LFS (served by the CDN). Default 1024.
	LFSThreshold int

	hub, cdn *httptest.Server

	mu        sync.Mutex
	repos     map[string]*repo
	blobs     map[string][]byte // sha256 -> bytes, for the CDN
	blobNames map[string]string // sha256 -> file name, to find its faults
	tokens    map[string]map[string]bool
	faults    map[string][]Fault
	apiFaults []Fault
	renamed   map[string]string // old repo id -> new
	reqs      []Request
	seq       int
}

type repo struct {
	private, gated bool
	refs           map[string]string // branch or tag -> commit
	commits        map[string]map[string]*file
}

type file struct {
	data   []byte
	gitSHA string // git blob sha1 of the data (or of the LFS pointer)
	sha256 string // set for LFS files
}

// New starts the fake hub and its CDN on 127.0.0.1; with t non-nil they are
// closed when the test ends.
func New(t TB) *Hub {
	h := &Hub{
		LFSThreshold: 1024,
		repos:        map[string]*repo{},
		blobs:        map[string][]byte{},
		blobNames:    map[string]string{},
		tokens:       map[string]map[string]bool{},
		faults:       map[string][]Fault{},
		renamed:      map[string]string{},
	}
	h.hub = httptest.NewServer(h.recorded("hub", http.HandlerFunc(h.serveHub)))
	h.cdn = httptest.NewServer(h.recorded("cdn", http.HandlerFunc(h.serveCDN)))
	h.URL, h.CDNURL = h.hub.URL, h.cdn.URL
	if t != nil {
		t.Helper()
		t.Cleanup(h.Close)
	}
	return h
}

// Close stops both servers.
func (h *Hub) Close() {
	h.hub.CloseClientConnections()
	h.cdn.CloseClientConnections()
	h.hub.Close()
	h.cdn.Close()
}

// GitBlobSHA1 is git's object id for data: sha1("blob <len>\0" + data), the
// ETag the hub sends for files stored in git.
func GitBlobSHA1(data []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(data))
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

// SHA256 is the hex sha256 of data, the ETag of LFS files.
func SHA256(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// Etag is the ETag a client should cache name under: the sha256 for LFS
// files, the git blob sha1 otherwise.
func (h *Hub) Etag(name string, data []byte) string {
	if h.isLFS(name, data) {
		return SHA256(data)
	}
	return GitBlobSHA1(data)
}

func (h *Hub) isLFS(name string, data []byte) bool {
	for _, ext := range []string{".safetensors", ".bin", ".gguf", ".pt"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return len(data) >= h.LFSThreshold
}

// Commit makes a commit on branch of repo (created public if new) whose tree
// is exactly files, and returns its sha.
func (h *Hub) Commit(repoID, branch string, files map[string][]byte) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.repoLocked(repoID)
	h.seq++
	tree := map[string]*file{}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	sum := sha1.New()
	fmt.Fprintf(sum, "%s %s %s %d\n", repoID, branch, r.refs[branch], h.seq)
	for _, n := range names {
		data := bytes.Clone(files[n])
		f := &file{data: data}
		if h.isLFS(n, data) {
			f.sha256 = SHA256(data)
			pointer := fmt.Sprintf("version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n", f.sha256, len(data))
			f.gitSHA = GitBlobSHA1([]byte(pointer))
			h.blobs[f.sha256] = data
			h.blobNames[f.sha256] = n
		} else {
			f.gitSHA = GitBlobSHA1(data)
		}
		tree[n] = f
		fmt.Fprintf(sum, "%s\x00%s\n", n, f.gitSHA)
	}
	sha := hex.EncodeToString(sum.Sum(nil))
	r.commits[sha] = tree
	r.refs[branch] = sha
	return sha
}

// CommitDir commits every regular file under dir (names relative to dir,
// slash-separated) to branch of repo, e.g. a tiny model fixture from
// testdata, and returns the commit sha.
func (h *Hub) CommitDir(repoID, branch, dir string) (string, error) {
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		return "", fmt.Errorf("hubtest: commit %s: %w", dir, err)
	}
	return h.Commit(repoID, branch, files), nil
}

// Setenv points the hub environment variables at this fake with cache as
// the hub cache, no token and online mode, for the rest of the test.
func (h *Hub) Setenv(t interface{ Setenv(key, value string) }, cache string) {
	t.Setenv("HF_ENDPOINT", h.URL)
	t.Setenv("HF_HUB_CACHE", cache)
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HF_TOKEN_PATH", filepath.Join(cache, ".no-token"))
	t.Setenv("HF_HUB_OFFLINE", "")
}

// Tag points ref (a tag or branch) of repo at commit.
func (h *Hub) Tag(repoID, ref, commit string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.repoLocked(repoID).refs[ref] = commit
}

func (h *Hub) repoLocked(id string) *repo {
	r := h.repos[id]
	if r == nil {
		r = &repo{refs: map[string]string{}, commits: map[string]map[string]*file{}}
		h.repos[id] = r
	}
	return r
}

// Rename moves repo oldID to newID; requests for oldID get a 307 with a
// relative Location to the same path under newID, as the hub answers for
// renamed repos.
func (h *Hub) Rename(oldID, newID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.repos[newID] = h.repos[oldID]
	delete(h.repos, oldID)
	h.renamed[oldID] = newID
}

// redirectRenamed answers a request for a renamed repo; it reports whether
// it did. kind is the prefix of the fake's key for the repo ("datasets/"
// for the dataset API, whose path lacks it).
func (h *Hub) redirectRenamed(w http.ResponseWriter, r *http.Request, kind, escPrefix, escRepo, escRest string) bool {
	id, err := url.PathUnescape(escRepo)
	if err != nil {
		return false
	}
	h.mu.Lock()
	newID, ok := h.renamed[kind+id]
	h.mu.Unlock()
	if !ok {
		return false
	}
	loc := escPrefix + strings.TrimPrefix(newID, kind) + escRest
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	w.Header().Set("Location", loc)
	w.WriteHeader(http.StatusTemporaryRedirect)
	return true
}

// SetPrivate makes repo answer as if it did not exist to anyone without a
// token granted access to it.
func (h *Hub) SetPrivate(repoID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.repoLocked(repoID).private = true
}

// SetGated makes repo answer 401 GatedRepo without a token and 403
// GatedRepo to tokens not granted access.
func (h *Hub) SetGated(repoID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.repoLocked(repoID).gated = true
}

// Grant makes token valid and gives it access to repos (private or gated).
func (h *Hub) Grant(token string, repos ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.tokens[token] == nil {
		h.tokens[token] = map[string]bool{}
	}
	for _, r := range repos {
		h.tokens[token][r] = true
	}
}

// Fail queues faults for the next GETs of the bytes of file name (in any
// repo), on the hub for small files or on the CDN for LFS files.
func (h *Hub) Fail(name string, faults ...Fault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults[name] = append(h.faults[name], faults...)
}

// FailAPI queues faults (Status only) for the next revision API calls.
func (h *Hub) FailAPI(faults ...Fault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.apiFaults = append(h.apiFaults, faults...)
}

// Requests returns the requests both servers received, in order.
func (h *Hub) Requests() []Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Request(nil), h.reqs...)
}

// ResetRequests forgets the recorded requests.
func (h *Hub) ResetRequests() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reqs = nil
}

// Count returns how many recorded requests went to server ("hub", "cdn" or
// "" for both) with method ("" for any) and a path containing part.
func (h *Hub) Count(server, method, part string) int {
	n := 0
	for _, r := range h.Requests() {
		if (server == "" || r.Server == server) && (method == "" || r.Method == method) && strings.Contains(r.Path, part) {
			n++
		}
	}
	return n
}

func (h *Hub) recorded(server string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.reqs = append(h.reqs, Request{Server: server, Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone()})
		h.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func hubError(w http.ResponseWriter, status int, code, msg string) {
	if code != "" {
		w.Header().Set("X-Error-Code", code)
	}
	w.Header().Set("X-Error-Message", msg)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// access answers for repo as the hub does for the request's token; it
// returns the repo when the request may proceed.
func (h *Hub) access(w http.ResponseWriter, r *http.Request, id string) *repo {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	h.mu.Lock()
	rp := h.repos[id]
	grants, known := h.tokens[tok]
	granted := known && grants[id]
	h.mu.Unlock()
	if tok != "" && !known {
		hubError(w, http.StatusUnauthorized, "", "Invalid credentials in Authorization header")
		return nil
	}
	if rp == nil || (rp.private && !granted) {
		status := http.StatusNotFound
		if tok == "" {
			status = http.StatusUnauthorized
		}
		hubError(w, status, "RepoNotFound", "Repository Not Found for url: "+r.URL.String()+". Please make sure you specified the correct `repo_id` and `repo_type`. If you are trying to access a private or gated repo, make sure you are authenticated.")
		return nil
	}
	if rp.gated && !granted {
		what := "model " + id
		if name, ok := strings.CutPrefix(id, "datasets/"); ok {
			what = "dataset " + name
		}
		if tok == "" {
			hubError(w, http.StatusUnauthorized, "GatedRepo", "Access to "+what+" is restricted. You must have access to it and be authenticated to access it. Please log in.")
		} else {
			hubError(w, http.StatusForbidden, "GatedRepo", "Access to "+what+" is restricted and you are not in the authorized list. Visit "+h.URL+"/"+id+" to ask for access.")
		}
		return nil
	}
	return rp
}

// commitOf resolves rev (a ref or a commit sha) in rp.
func (h *Hub) commitOf(rp *repo, rev string) (string, map[string]*file) {
	h.mu.Lock()
	defer h.mu.Unlock()
	sha := rev
	if c, ok := rp.refs[rev]; ok {
		sha = c
	}
	return sha, rp.commits[sha]
}

func (h *Hub) serveHub(w http.ResponseWriter, r *http.Request) {
	p := r.URL.EscapedPath()
	if rest, ok := strings.CutPrefix(p, "/api/models/"); ok {
		h.serveRevision(w, r, "", rest)
		return
	}
	if rest, ok := strings.CutPrefix(p, "/api/datasets/"); ok {
		h.serveRevision(w, r, "datasets/", rest)
		return
	}
	// A dataset's resolve path, /datasets/{org}/{name}/resolve/..., names the
	// repo the fake keeps as "datasets/{org}/{name}".
	if i := strings.Index(p, "/resolve/"); i > 0 {
		h.serveResolve(w, r, p[1:i], p[i+len("/resolve/"):])
		return
	}
	hubError(w, http.StatusNotFound, "", "Sorry, we can't find the page you are looking for.")
}

type sibling struct {
	Name   string         `json:"rfilename"`
	Size   *int           `json:"size,omitempty"`
	BlobID string         `json:"blobId,omitempty"`
	LFS    map[string]any `json:"lfs,omitempty"`
}

// serveRevision answers the revision API; kind is "" for models and
// "datasets/" for datasets (the prefix of the fake's key for the repo).
func (h *Hub) serveRevision(w http.ResponseWriter, r *http.Request, kind, rest string) {
	if r.Method != http.MethodGet {
		hubError(w, http.StatusMethodNotAllowed, "", "method not allowed")
		return
	}
	h.mu.Lock()
	var f Fault
	if len(h.apiFaults) > 0 {
		f, h.apiFaults = h.apiFaults[0], h.apiFaults[1:]
	}
	h.mu.Unlock()
	if f.Status != 0 {
		hubError(w, f.Status, "", "injected fault")
		return
	}
	escRepo, escRev := rest, "main"
	if i := strings.Index(rest, "/revision/"); i >= 0 {
		escRepo, escRev = rest[:i], rest[i+len("/revision/"):]
	}
	api := "/api/models/"
	if kind != "" {
		api = "/api/" + kind
	}
	if h.redirectRenamed(w, r, kind, api, escRepo, strings.TrimPrefix(rest, escRepo)) {
		return
	}
	id, err1 := url.PathUnescape(escRepo)
	rev, err2 := url.PathUnescape(escRev)
	if err1 != nil || err2 != nil {
		hubError(w, http.StatusBadRequest, "", "bad path")
		return
	}
	rp := h.access(w, r, kind+id)
	if rp == nil {
		return
	}
	sha, tree := h.commitOf(rp, rev)
	if tree == nil {
		hubError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev)
		return
	}
	blobs := r.URL.Query().Get("blobs") == "true" || r.URL.Query().Get("blobs") == "1"
	names := make([]string, 0, len(tree))
	for n := range tree {
		names = append(names, n)
	}
	sort.Strings(names)
	sibs := make([]sibling, 0, len(names))
	for _, n := range names {
		s := sibling{Name: n}
		if blobs {
			f := tree[n]
			size := len(f.data)
			s.Size, s.BlobID = &size, f.gitSHA
			if f.sha256 != "" {
				s.LFS = map[string]any{"sha256": f.sha256, "size": size, "pointerSize": 134}
			}
		}
		sibs = append(sibs, s)
	}
	gated := any(false)
	if rp.gated {
		gated = "manual"
	}
	info := map[string]any{
		"_id": sha[:24], "id": id, "sha": sha, "private": rp.private, "gated": gated,
		"disabled": false, "lastModified": time.Unix(1700000000, 0).UTC().Format(time.RFC3339),
		"tags": []string{}, "siblings": sibs,
	}
	if kind == "" {
		info["modelId"] = id
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(info)
}

func (h *Hub) serveResolve(w http.ResponseWriter, r *http.Request, escRepo, rest string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hubError(w, http.StatusMethodNotAllowed, "", "method not allowed")
		return
	}
	if h.redirectRenamed(w, r, "", "/", escRepo, "/resolve/"+rest) {
		return
	}
	escRev, escFile, _ := strings.Cut(rest, "/")
	id, err1 := url.PathUnescape(escRepo)
	rev, err2 := url.PathUnescape(escRev)
	name, err3 := url.PathUnescape(escFile)
	if err1 != nil || err2 != nil || err3 != nil {
		hubError(w, http.StatusBadRequest, "", "bad path")
		return
	}
	rp := h.access(w, r, id)
	if rp == nil {
		return
	}
	sha, tree := h.commitOf(rp, rev)
	if tree == nil {
		hubError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev)
		return
	}
	f := tree[name]
	if f == nil {
		hubError(w, http.StatusNotFound, "EntryNotFound", name+" does not exist on \""+rev+"\"")
		return
	}
	w.Header().Set("X-Repo-Commit", sha)
	w.Header().Set("Accept-Ranges", "bytes")
	if f.sha256 != "" {
		w.Header().Set("ETag", `"`+f.gitSHA+`"`)
		w.Header().Set("X-Linked-Etag", `"`+f.sha256+`"`)
		w.Header().Set("X-Linked-Size", fmt.Sprint(len(f.data)))
		w.Header().Set("Location", h.CDNURL+"/repos/"+f.sha256[:2]+"/"+f.sha256+"?X-Amz-Signature=fake&response-content-disposition="+url.QueryEscape("attachment; filename=\""+name+"\";"))
		w.WriteHeader(http.StatusFound)
		return
	}
	h.serveBytes(w, r, name, f.data, `"`+f.gitSHA+`"`)
}

func (h *Hub) serveCDN(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "" {
		http.Error(w, "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified", http.StatusBadRequest)
		return
	}
	if r.URL.Query().Get("X-Amz-Signature") == "" {
		http.Error(w, "AccessDenied: no signature", http.StatusForbidden)
		return
	}
	sha := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	h.mu.Lock()
	data, ok := h.blobs[sha]
	name := h.blobNames[sha]
	h.mu.Unlock()
	if !ok {
		http.Error(w, "NoSuchKey", http.StatusNotFound)
		return
	}
	h.serveBytes(w, r, name, data, `"`+GitBlobSHA1(data)[:32]+`"`) // S3's ETag is neither hub etag
}

// serveBytes answers a GET/HEAD for data, with Range support, applying the
// next queued fault for name to GETs.
func (h *Hub) serveBytes(w http.ResponseWriter, r *http.Request, name string, data []byte, etag string) {
	var f Fault
	if r.Method == http.MethodGet {
		h.mu.Lock()
		if q := h.faults[name]; len(q) > 0 {
			f, h.faults[name] = q[0], q[1:]
		}
		h.mu.Unlock()
	}
	if f.Status != 0 {
		hubError(w, f.Status, "", "injected fault")
		return
	}
	if f.Corrupt && len(data) > 0 {
		data = bytes.Clone(data)
		data[len(data)/2] ^= 0xff
	}
	var out http.ResponseWriter = w
	if f.DropAfter > 0 {
		out = &dropWriter{ResponseWriter: w, left: f.DropAfter}
	}
	if f.StallAfter > 0 {
		out = &dropWriter{ResponseWriter: w, left: f.StallAfter, stall: r.Context().Done()}
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Content-Type", "application/octet-stream")
	if f.IgnoreRange {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		out.Write(data)
		return
	}
	http.ServeContent(out, r, "", time.Time{}, bytes.NewReader(data))
}

// dropWriter sends left body bytes, then aborts the connection mid-body
// (after waiting for stall to close, when set).
type dropWriter struct {
	http.ResponseWriter
	left  int64
	stall <-chan struct{}
}

func (d *dropWriter) Write(b []byte) (int, error) {
	n := int64(len(b))
	if n > d.left {
		n = d.left
	}
	if n > 0 {
		d.ResponseWriter.Write(b[:n])
		d.left -= n
	}
	if d.left == 0 {
		http.NewResponseController(d.ResponseWriter).Flush()
		if d.stall != nil {
			<-d.stall
		}
		panic(http.ErrAbortHandler) // net/http closes the connection without finishing the body
	}
	return int(n), nil
}
