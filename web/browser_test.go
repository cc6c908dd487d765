package web

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDashboardInBrowser runs testdata/browser.mjs in a real Chromium against
// a gateway with the dashboard and a populated SQLite store: login, charts
// drawn, a traffic filter, a request detail with feedback, the costs page
// with its break-even, and the Datasets, Training, Evals and Routes pages.
// It needs node, Debian's chromium and npm's playwright-core (in
// $FOUNDRY_NPM_DIR, default .cache/npm); scripts/test.sh installs them.
// Screenshots go to $FOUNDRY_SCREENSHOTS (default bench/out/screenshots).
func TestDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node is not installed (apt-get install -y nodejs npm)")
	}
	chromium := os.Getenv("FOUNDRY_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		missing(t, chromium+" is missing (apt-get install -y chromium, or set FOUNDRY_CHROMIUM)")
	}
	npmDir := os.Getenv("FOUNDRY_NPM_DIR")
	if npmDir == "" {
		npmDir = filepath.Join(root, ".cache", "npm")
	}
	if _, err := os.Stat(filepath.Join(npmDir, "node_modules", "playwright-core", "package.json")); err != nil {
		missing(t, "playwright-core is not installed in "+npmDir+" (npm install --prefix "+npmDir+" playwright-core; set FOUNDRY_NPM_DIR to use another place)")
	}
	shots := os.Getenv("FOUNDRY_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join(root, "bench", "out", "screenshots")
	}
	if shots, err = filepath.Abs(shots); err != nil {
		t.Fatal(err)
	}

	const key = "fdy-admin-browser-test"
	d := newDash(t, dashOpts{adminKey: key, records: 400, pages: true})

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "browser.mjs"), d.URL, shots)
	cmd.Env = append(os.Environ(), "FOUNDRY_NPM_DIR="+npmDir, "FOUNDRY_DASHBOARD_KEY="+key, "FOUNDRY_CHROMIUM="+chromium,
		"FOUNDRY_LIVE_JOB="+filepath.Join(d.fx.dataDir, "jobs", fxJobLive, "job.json"))
	out, err := cmd.CombinedOutput()
	t.Logf("%s", strings.TrimSpace(string(out)))
	if ctx.Err() != nil {
		t.Fatalf("the browser test did not finish in 120s; see the output above and %s/failure.png", shots)
	}
	if err != nil {
		t.Fatalf("the browser test failed (%v); see the output above and the screenshots in %s", err, shots)
	}
}

// missing skips a test whose tools are not installed, or fails it when
// FOUNDRY_REQUIRE_ALL=1 (CI, scripts/test.sh) says every test must run.
func missing(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("FOUNDRY_REQUIRE_ALL") == "1" {
		t.Fatalf("%s; FOUNDRY_REQUIRE_ALL=1 forbids skipping the browser test (scripts/test.sh installs everything it needs)", why)
	}
	t.Skip(why + "; skipping the browser test")
}
