#!/usr/bin/env bash
# A/B of two pilus builds on pod-to-pod TCP_CRR and TCP_RR, with the floor (router
# namespace, no filter) in the same run: two agents side by side (PILUS_A, PILUS_B), each
# with a server and a client pod and a CiliumNetworkPolicy of N ingress rules on the server
# (as bench/e2e.sh), measured interleaved repetition by repetition (A/B order alternating),
# so machine noise hits all three alike. Prints medians and ratios; no records.
#   PILUS_A=/tmp/old/pilus PILUS_B=build/pilus bash bench/ab.sh [REPS] [SECONDS] [N]
source "$(dirname "$0")/lib.sh"

: "${PILUS_A:?path of the A build's pilus}" "${PILUS_B:?path of the B build's pilus}"
reps=${1:-7}; seconds=${2:-2}; rules=${3:-10}
port=5001
tag=$BENCH_TAG

pilus_policy() {
  python3 - "$1" "$AGENT_NS" <<'PY'
import json, sys
n, ns = int(sys.argv[1]), sys.argv[2]
ports = [{"ports": [{"port": "5001", "protocol": "TCP"}, {"port": "5002", "protocol": "TCP"}]}]
rules = [{"fromCIDR": [f"10.250.{i // 250}.{i % 250 + 1}/32"], "toPorts": ports} for i in range(n - 1)]
rules.append({"fromEndpoints": [{"matchLabels": {"app": "bench-client"}}], "toPorts": ports})
print(json.dumps({"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
                  "metadata": {"name": "bench-rules", "namespace": ns},
                  "spec": {"endpointSelector": {"matchLabels": {"app": "bench-server"}}, "ingress": rules}}))
PY
}

measure() {
  local out
  if ! out=$(timeout --foreground $((${seconds%.*} + 20)) ip netns exec "$1" "${pin_client[@]}" "$LOADGEN" "$3" --host "$2" --port $port --seconds "$seconds"); then
    log "$3 from $1 to $2 failed: $out"
    echo NaN
    return
  fi
  json_field per_second <<<"$out"
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

declare -A got=()
for r in $(seq "$reps"); do
  if ((r % 2)); then order=(floor A B); else order=(floor B A); fi
  for t in crr rr; do
    for s in "${order[@]}"; do got[$t,$s]+=" $(measure "${client[$s]}" "${server[$s]}" "$t")"; done
  done
  log "rep $r done"
done
for t in crr rr; do
  fa=$(median ${got[$t,floor]}); a=$(median ${got[$t,A]}); b=$(median ${got[$t,B]})
  echo "$t floor:${got[$t,floor]}"
  echo "$t A:${got[$t,A]}"
  echo "$t B:${got[$t,B]}"
  awk -v t="$t" -v f="$fa" -v a="$a" -v b="$b" 'BEGIN {printf "%s medians: floor %.0f  A %.0f (%.3f of floor)  B %.0f (%.3f of floor)  B/A %.3f\n", t, f, a, a/f, b, b/f, b/a}'
  # Paired: B over A within each repetition (measured seconds apart), then the median.
  read -ra as <<<"${got[$t,A]}"; read -ra bs <<<"${got[$t,B]}"
  ratios=(); for i in "${!as[@]}"; do ratios+=("$(awk -v a="${as[$i]}" -v b="${bs[$i]}" 'BEGIN {printf "%.3f", b/a}')"); done
  echo "$t B/A per repetition: ${ratios[*]}  median $(median "${ratios[@]}")"
done
