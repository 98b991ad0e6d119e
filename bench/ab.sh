#!/usr/bin/env bash
# A/B of two pilus builds on pod-to-pod TCP_CRR and TCP_RR, with the floor (router
# namespace, no filter) in the same run: two agents side by side (PILUS_A, PILUS_B), each
# with a server and a client pod and a CiliumNetworkPolicy of N ingress rules on the server
# (as bench/e2e.sh), measured interleaved repetition by repetition (A/B order alternating),
# so machine noise hits all three alike. Prints medians and ratios of the rate and of the
# CPU time per transaction; no records.
#   PILUS_A=/tmp/old/pilus PILUS_B=build/pilus bash bench/ab.sh [REPS] [SECONDS] [N]
source "$(dirname "$0")/lib.sh"

: "${PILUS_A:?path of the A build's pilus}" "${PILUS_B:?path of the B build's pilus}"
reps=${1:-7}; seconds=${2:-2}; rules=${3:-10}
port=5001
tag=$BENCH_TAG

# cpu_ticks NETNS: user + system clock ticks of the processes in a namespace.
cpu_ticks() {
  local t=0 pid
  for pid in $(ip netns pids "$1"); do t=$((t + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done
  echo "$t"
}

# measure CLIENT_NS HOST TEST SERVER_NS -> "rate cpu_us": transactions/s, and the CPU time
# (client and server processes, user + system: the stack and the BPF programs run mostly in
# their system time, the send side's softirq included) per transaction, in µs. The CPU per
# transaction depends far less than the rate on what else the machine runs.
measure() {
  local out=$BENCH_WORK/out tm=$BENCH_WORK/time s0 s1 TIMEFORMAT='%U %S'
  s0=$(cpu_ticks "$4")
  if ! { time timeout --foreground $((${seconds%.*} + 20)) ip netns exec "$1" "${pin_client[@]}" "$LOADGEN" "$3" --host "$2" --port $port --seconds "$seconds" >"$out"; } 2>"$tm"; then
    log "$3 from $1 to $2 failed: $(cat "$out" "$tm")"
    echo "NaN NaN"
    return
  fi
  s1=$(cpu_ticks "$4")
  local rate
  rate=$(json_field per_second <"$out")
  awk -v r="$rate" -v s="$seconds" -v t="$(tail -1 "$tm")" -v d=$((s1 - s0)) -v hz="$(getconf CLK_TCK)" \
    'BEGIN {split(t, c, " "); printf "%s %.2f", r, ((c[1] + c[2]) + d / hz) * 1e6 / (r * s)}'
}

routed_pair f 10.244.251 10.244.252
declare -A client server
for side in A B; do
  BENCH_TAG=$tag${side,,}
  if [ "$side" = A ]; then PILUS=$PILUS_A; else PILUS=$PILUS_B; fi
  log "agent $side: $PILUS"
  agent_start "$side"
  server_and_client_pods
  pilus_policy "$rules" | pilusc apply -f - >/dev/null
  client[$side]=$(pod_netns bench-client)
  server[$side]=$(pod_ip bench-server)
done
client[floor]="pbfc-$tag"; server[floor]=10.244.252.2
declare -A server_ns=([floor]="pbfs-$tag" [A]="pl-b${tag}a_bench-server" [B]="pl-b${tag}b_bench-server")
# Placement moves RR by a factor of 5 on a small machine: with PIN=1 every server runs on the
# last CPU and every client on the first, the same for all three; with PIN=same all on the
# first (no cross-CPU wake-ups: throughput then follows the CPU cost of a transaction).
pin_client=()
if [ "${PIN:-0}" != 0 ]; then
  last=$(($(nproc) - 1))
  [ "$PIN" = same ] && last=0
  for ns in "pbfs-$tag" "pl-b${tag}a_bench-server" "pl-b${tag}b_bench-server"; do
    for pid in $(ip netns pids "$ns"); do taskset -pc "$last" "$pid" >/dev/null; done
  done
  pin_client=(taskset -c 0)
fi

declare -A got=() cpu=()
for r in $(seq "$reps"); do
  if ((r % 2)); then order=(floor A B); else order=(floor B A); fi
  for t in crr rr; do
    for s in "${order[@]}"; do
      read -r rate us <<<"$(measure "${client[$s]}" "${server[$s]}" "$t" "${server_ns[$s]}")"
      got[$t,$s]+=" $rate"; cpu[$t,$s]+=" $us"
    done
  done
  log "rep $r done"
done
for t in crr rr; do
  fa=$(median ${got[$t,floor]}); a=$(median ${got[$t,A]}); b=$(median ${got[$t,B]})
  for s in floor A B; do echo "$t $s per second:${got[$t,$s]}"; echo "$t $s cpu us per transaction:${cpu[$t,$s]}"; done
  awk -v t="$t" -v f="$fa" -v a="$a" -v b="$b" 'BEGIN {printf "%s rate medians: floor %.0f  A %.0f (%.3f of floor)  B %.0f (%.3f of floor)  B/A %.3f\n", t, f, a, a/f, b, b/f, b/a}'
  cf=$(median ${cpu[$t,floor]}); ca=$(median ${cpu[$t,A]}); cb=$(median ${cpu[$t,B]})
  awk -v t="$t" -v f="$cf" -v a="$ca" -v b="$cb" 'BEGIN {printf "%s cpu us/transaction medians: floor %.2f  A %.2f  B %.2f  B/A %.3f\n", t, f, a, b, b/a}'
  # Paired: B over A within each repetition (measured seconds apart), then the median.
  read -ra as <<<"${got[$t,A]}"; read -ra bs <<<"${got[$t,B]}"
  ratios=(); for i in "${!as[@]}"; do ratios+=("$(awk -v a="${as[$i]}" -v b="${bs[$i]}" 'BEGIN {printf "%.3f", b/a}')"); done
  echo "$t rate B/A per repetition: ${ratios[*]}  median $(median "${ratios[@]}")"
done
