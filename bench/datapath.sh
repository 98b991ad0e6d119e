#!/usr/bin/env bash
# Datapath cost per packet: bench_datapath (BPF_PROG_TEST_RUN on from_pod, one call per packet)
# with N policy map, ipcache and service entries; flatness is the ratio to N=10.
source "$(dirname "$0")/lib.sh"
if [ "$BENCH_QUICK" = 1 ]; then
  "$BENCH_BUILD/bench_datapath" --sizes 10 1000 10000 100000 --packets 1500 --reps 3 >>"$BENCH_RECORDS"
else
  "$BENCH_BUILD/bench_datapath" --sizes 10 1000 10000 100000 --packets 4000 --reps 7 >>"$BENCH_RECORDS"
fi
