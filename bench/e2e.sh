#!/usr/bin/env bash
# End-to-end on veth: RR, CRR and STREAM between two namespaces, for
#   floor    client ns -- router ns (plain forwarding, no filter) -- server ns
#   iptables the same with N rules in the router's FORWARD chain, the matching one last
#   pilus    two pilus pods, the server selected by a CiliumNetworkPolicy of N ingress rules,
#            the allowing one last
# Every N's three configurations are measured interleaved, repetition by repetition, so
# machine noise hits them alike. Also records the time to program the N rules into each.
source "$(dirname "$0")/lib.sh"

if [ "$BENCH_QUICK" = 1 ]; then
  sizes=(10 1000); seconds=1; reps=1
else
  sizes=(10 1000 10000); seconds=2; reps=5
fi
port=5001  # echo; port+1 discards (STREAM)

# iptables_rules N CLIENT_IP: FORWARD policy DROP; replies from the server side pass first
# (as conntrack passes pilus's replies); then N-1 non-matching source rules, the client's last.
# No ESTABLISHED shortcut: every client packet walks the chain, as it meets pilus's policy.
iptables_rules() {
  python3 - "$1" "$2" <<'PY'
import sys
n, client = int(sys.argv[1]), sys.argv[2]
print("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]")
print("-A FORWARD -i to-server -j ACCEPT")
for i in range(n - 1):
    print(f"-A FORWARD -s 10.250.{i // 250}.{i % 250 + 1}/32 -p tcp -m multiport --dports 5001,5002 -j ACCEPT")
print(f"-A FORWARD -s {client}/32 -p tcp -m multiport --dports 5001,5002 -j ACCEPT")
print("COMMIT")
PY
}

# measure NETNS HOST TEST -> one number (transactions/s, or Gbit/s for stream); 0 on failure.
measure() {
  local out p=$port field=per_second
  [ "$3" = stream ] && { p=$((port + 1)); field=gbit_per_second; }
  if ! out=$(timeout --foreground $((${seconds%.*} + 20)) ip netns exec "$1" "$LOADGEN" "$3" --host "$2" --port $p --seconds "$seconds"); then
    log "$3 from $1 to $2 failed: $out"
    echo NaN
    return
  fi
  json_field "$field" <<<"$out"
}

log "e2e: floor and iptables topologies"
routed_pair f 10.244.251 10.244.252
routed_pair i 10.244.253 10.244.254
floor_client="pbfc-$BENCH_TAG" floor_server=10.244.252.2
ipt_client="pbic-$BENCH_TAG" ipt_router="pbir-$BENCH_TAG" ipt_server=10.244.254.2

log "e2e: pilus agent and pods"
agent_start e2e
server_and_client_pods
pilus_client=$(pod_netns bench-client)
pilus_server=$(pod_ip bench-server)

tests=(rr crr stream)
declare -A unit=([rr]="transactions/s" [crr]="connections/s" [stream]="Gbit/s")
declare -A title=([rr]="TCP_RR: request/response over one connection"
                  [crr]="TCP_CRR: connect, one request, close"
                  [stream]="TCP_STREAM: bulk throughput")
prev_policy=""
for n in "${sizes[@]}"; do
  log "e2e: N=$n rules"
  iptables_rules "$n" 10.244.253.2 >"$BENCH_WORK/rules-$n"
  t0=$(now_s); ip netns exec "$ipt_router" iptables-restore <"$BENCH_WORK/rules-$n"; t1=$(now_s)
  ipt_program=$(elapsed "$t0" "$t1")
  pilus_policy "$n" >"$BENCH_WORK/policy-$n.json"
  [ -n "$prev_policy" ] && pilusc delete -f "$prev_policy" >/dev/null
  t0=$(now_s); pilusc apply -f "$BENCH_WORK/policy-$n.json" >/dev/null; t1=$(now_s)
  pilus_program=$(elapsed "$t0" "$t1")
  prev_policy="$BENCH_WORK/policy-$n.json"
  record e2e "Time to program N rules" "N=$n" s true "$pilus_program" "$ipt_program" \
    "iptables-restore of N FORWARD rules in the router namespace" \
    "pilus: pilus apply of one CiliumNetworkPolicy with N ingress rules, until the CLI returns"
  declare -A got=()
  for r in $(seq "$reps"); do
    for t in "${tests[@]}"; do
      got[$t,floor]+=" $(measure "$floor_client" "$floor_server" "$t")"
      got[$t,ipt]+=" $(measure "$ipt_client" "$ipt_server" "$t")"
      got[$t,pilus]+=" $(measure "$pilus_client" "$pilus_server" "$t")"
    done
  done
  for t in "${tests[@]}"; do
    record e2e "${title[$t]}" "N=$n" "${unit[$t]}" false "${got[$t,pilus]}" "${got[$t,ipt]}" \
      "iptables FORWARD chain of N rules in a router namespace" \
      "pilus: policy of N rules on the server pod; floor: router namespace without rules; ${seconds} s per run" \
      "${got[$t,floor]}"
  done
  unset got
done
log "e2e: done"
