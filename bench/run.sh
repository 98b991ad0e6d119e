#!/usr/bin/env bash
# `make bench`: runs every benchmark script in order, each bounded in time and cleaning up
# after itself, then writes bench/results/latest.{md,json} and README.md's benchmark table (between
# its bench-table markers). Usage: bench/run.sh BUILD_DIR [quick]
set -uo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
export BENCH_BUILD=$(cd "${1:-build}" && pwd)
export BENCH_QUICK=0
[ "${2:-}" = quick ] && BENCH_QUICK=1
export BENCH_TAG=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
export BENCH_WORK=/tmp/pilus-bench-$BENCH_TAG
export BENCH_RECORDS=$BENCH_WORK/records.jsonl
mkdir -p "$BENCH_WORK"
: >"$BENCH_RECORDS"
[ "$(id -u)" = 0 ] || { echo "make bench needs root (namespaces, BPF)" >&2; exit 1; }

# name and time limit (seconds) of each benchmark, quick / full.
benchmarks=(
  "datapath 60 300"
  "e2e 100 720"
  "controlplane 60 600"
  "observe 40 180"
  "services 90 480"
  "l7 40 180"
  "cni 90 300"
)

start=$(date +%s.%N)
failed=()
interrupted=0
child=""
# Ctrl-C reaches this script (the terminal's foreground group); `timeout` runs each benchmark
# in a process group of its own and passes a TERM on to all of it, so the benchmark's traps
# clean up at once, whether at its time limit or on Ctrl-C.
trap 'interrupted=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null' INT TERM
for b in "${benchmarks[@]}"; do
  set -- $b
  limit=$3
  [ "$BENCH_QUICK" = 1 ] && limit=$2
  [ "$interrupted" = 1 ] && break
  echo "bench: $1 (limit ${limit}s)" >&2
  timeout -k 60 "$limit" bash "$BENCH_DIR/$1.sh" &
  child=$!
  rc=0
  wait "$child" || rc=$?
  while kill -0 "$child" 2>/dev/null; do wait "$child" || rc=$?; done  # a trapped signal ends wait early
  child=""
  [ "$rc" != 0 ] && { failed+=("$1"); echo "bench: $1 failed (exit $rc)" >&2; }
done
end=$(date +%s.%N)
wall=$(awk -v a="$start" -v b="$end" 'BEGIN {print b - a}')
quick_flag=""
[ "$BENCH_QUICK" = 1 ] && quick_flag=--quick
(IFS=,; python3 "$BENCH_DIR/report.py" "$BENCH_RECORDS" --out-dir "$BENCH_DIR/results" $quick_flag \
  --wall-seconds "$wall" --failed "${failed[*]}" --readme "$BENCH_DIR/../README.md") >/dev/null
cp "$BENCH_RECORDS" "$BENCH_DIR/results/latest.records.jsonl"
rm -rf "$BENCH_WORK"
echo "bench: wrote $BENCH_DIR/results/latest.md and latest.json in ${wall%.*} s" >&2
[ "$interrupted" = 0 ] && [ ${#failed[@]} = 0 ]
