#!/usr/bin/env bash
# Runs Foundry's CPU benchmarks one after another and writes their output
# under bench/out/ (git-ignored). Copy the tables into docs/benchmarks.md
# with the machine and the date. Run on an otherwise idle machine: every
# comparison here is side by side in one run, but absolute numbers still
# move with what else the cores are doing.
#
#   bench/run.sh            # all
#   bench/run.sh gateway    # one of: gateway store tokenizer engine dataset judge
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/out
mkdir -p "$out"
want=${1:-all}
run() { [ "$want" = all ] || [ "$want" = "$1" ]; }
header() { printf '\n== %s (%s, %s cores, %s)\n' "$1" "$(date -u +%FT%TZ)" "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"; }

if run gateway; then
  header gateway
  go run ./bench/gateway -duration 10s -out "$out/gateway.json" | tee "$out/gateway.txt"
fi
if run store; then
  header store
  go test ./store/sqlite ./store/postgres -run '^$' -bench 'Insert' -benchtime 3s | tee "$out/store.txt"
fi
if run tokenizer; then
  header tokenizer
  FOUNDRY_NPM_DIR=${FOUNDRY_NPM_DIR:-$PWD/.cache/npm} go test ./tokenizer -run '^$' -bench 'Encode' -benchtime 2s -cpu 1 | tee "$out/tokenizer.txt"
fi
if run engine; then
  header engine
  go test ./engine -run '^$' -bench . -benchtime 2s | tee "$out/engine.txt"
fi
if run dataset; then
  header dataset
  go run ./bench/dataset | tee "$out/dataset.txt"
fi
if run judge; then
  header judge
  go run ./bench/judge | tee "$out/judge.txt"
fi
