package judgestage

import (
	"path/filepath"
	"testing"
)

// TestCachesShareOneFile checks that the stages of one build get the same
// open cache for one file (by any spelling of its path), that it stays open
// until its last user releases it, and that a release twice counts once.
func TestCachesShareOneFile(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "judge-cache.db")
	cs := &caches{}
	a, releaseA, err := cs.get(path)
	if err != nil {
		t.Fatal(err)
	}
	b, releaseB, err := cs.get(filepath.Join(dir, "sub", ".", "judge-cache.db"))
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("two stages got two open caches of one file")
	}
	other, releaseOther, err := cs.get(filepath.Join(dir, "other.db"))
	if err != nil {
		t.Fatal(err)
	}
	if other == a {
		t.Fatal("two files share one cache")
	}
	releaseOther()

	if err := a.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	releaseA()
	releaseA() // counts once: b is still open
	if v, ok, err := b.Get(ctx, "k"); err != nil || !ok || string(v) != "v" {
		t.Fatalf("after one release: Get = %q, %v, %v; want the value", v, ok, err)
	}
	releaseB()
	if _, _, err := b.Get(ctx, "k"); err == nil {
		t.Fatal("the cache is still open after its last release")
	}
	if len(cs.open) != 0 {
		t.Fatalf("%d caches left open", len(cs.open))
	}

	// Reopened, the file still holds what was put.
	c, release, err := cs.get(path)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if v, ok, err := c.Get(ctx, "k"); err != nil || !ok || string(v) != "v" {
		t.Fatalf("reopened: Get = %q, %v, %v; want the value", v, ok, err)
	}
}
