#!/usr/bin/env bash
# Runs one full dataset build per size inside a memory cgroup limited to
# LIMIT MiB, to show that what the build keeps per record (dedupe's index,
# the row spool) lives in files the kernel can write back and evict, so a
# 1M-record build fits the same limit as a 100k one. Needs root and cgroup
# v1 or v2 with the memory controller; uses the stores bench/dataset made.
#
#   go build -o /tmp/bench-dataset ./bench/dataset
#   go run ./bench/dataset -sizes 100000,1000000 -rounds 1   # makes the stores once
#   bench/dataset/memlimit.sh /tmp/bench-dataset 256 100000 1000000
set -euo pipefail
bin=${1:?bench/dataset binary}
limit=${2:-256}
shift 2 || true
sizes=${*:-100000 1000000}
dir=${DIR:-${TMPDIR:-/tmp}/foundry-bench-dataset}
name=foundry-bench-memlimit-$$

if [ -f /sys/fs/cgroup/cgroup.controllers ]; then # v2
  cg=/sys/fs/cgroup/$name
  mkdir "$cg"
  echo $((limit << 20)) >"$cg/memory.max"
  echo 0 >"$cg/memory.swap.max" 2>/dev/null || true
  peak() { cat "$cg/memory.peak" 2>/dev/null || echo -1; }
  reset() { echo 0 >"$cg/memory.peak" 2>/dev/null || true; }
else # v1
  cg=/sys/fs/cgroup/memory/$name
  mkdir "$cg"
  echo $((limit << 20)) >"$cg/memory.limit_in_bytes"
  peak() { cat "$cg/memory.max_usage_in_bytes"; }
  reset() { echo 0 >"$cg/memory.max_usage_in_bytes"; }
fi
trap 'rmdir "$cg" 2>/dev/null || true' EXIT

printf '%-9s %10s %8s %8s %15s %15s\n' records records/s wall_s cpu_s "cgroup peak MiB" "process VmHWM MiB"
for n in $sizes; do
  db=$dir/records-$n.db
  [ -f "$db" ] || { echo "no store $db: run go run ./bench/dataset -sizes $n first" >&2; exit 1; }
  reset
  out=$(bash -c "echo \$\$ >$cg/cgroup.procs && exec $bin -mode full -db $db -stages 4")
  python3 - "$n" "$(peak)" "$out" <<'PY'
import json, sys
n, peak, r = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
print(f"{n:<9} {r['records']/r['wall_s']:10.0f} {r['wall_s']:8.1f} {r['cpu_s']:8.1f} {peak/2**20:15.0f} {r['peak_rss_mib']:15.0f}")
PY
done
