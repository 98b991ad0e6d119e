#!/usr/bin/env bash
# Datapath cost per packet: bench_datapath (BPF_PROG_TEST_RUN on from_pod) with N policy map
# and ipcache entries; flatness is the ratio to N=10.
source "$(dirname "$0")/lib.sh"
if [ "$BENCH_QUICK" = 1 ]; then
  "$BENCH_BUILD/bench_datapath" --sizes 10 1000 10000 100000 --repeat 20000 --reps 3 >>"$BENCH_RECORDS"
else
  "$BENCH_BUILD/bench_datapath" --sizes 10 1000 10000 100000 --repeat 200000 --reps 7 >>"$BENCH_RECORDS"
fi
