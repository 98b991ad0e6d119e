#!/usr/bin/env bash
# Control plane: the cost of a pod, the time and agent peak memory to apply K policies over
# P pods' identities, and the time from `pilus apply` returning to the datapath enforcing it.
# Baselines: iptables-restore of K equivalent rules, and an iptables DROP rule inserted in a
# router namespace, watched by the same kind of connection.
#
# Every pod has its own labels, so P pods are P identities. Pods get a netns, a veth and
# programs (tens of ms each), so the quick form uses few.
source "$(dirname "$0")/lib.sh"

if [ "$BENCH_QUICK" = 1 ]; then
  pods=20; policy_counts=(1000); reps=2
else
  pods=1000; policy_counts=(1000 10000); reps=5
fi

AGENT_POD_PREFIX=22 agent_start cp  # room for 1000 pods
log "controlplane: $pods pods"
python3 - "$AGENT_NS" "$pods" >"$BENCH_WORK/pods.yaml" <<'PY'
import json, sys
ns, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    print("---")
    print(json.dumps({"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": f"p{i}", "namespace": ns, "labels": {"app": f"p{i}", "tier": f"t{i % 10}"}},
                      "spec": {"containers": [{"name": "c"}]}}))
PY
rss0=$(vmhwm_kb "$AGENT_PID")
t0=$(now_s); pilusc apply -f "$BENCH_WORK/pods.yaml" >/dev/null; t1=$(now_s)
per_pod_ms=$(awk -v s="$(elapsed "$t0" "$t1")" -v n="$pods" 'BEGIN {printf "%.1f", s * 1000 / n}')
record controlplane "Pods" "apply $pods pods (ms per pod)" ms true "$per_pod_ms" "" "none" \
  "each pod: netns, veth, address, tc programs, identity"

# K policies: policy i selects pod i mod P and allows ingress from pod i+1 mod P on its own port.
policies_yaml() {
  python3 - "$AGENT_NS" "$pods" "$1" <<'PY'
import json, sys
ns, p, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(k):
    print("---")
    print(json.dumps({"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
                      "metadata": {"name": f"cp{i}", "namespace": ns},
                      "spec": {"endpointSelector": {"matchLabels": {"app": f"p{i % p}"}},
                               "ingress": [{"fromEndpoints": [{"matchLabels": {"app": f"p{(i + 1) % p}"}}],
                                            "toPorts": [{"ports": [{"port": str(1000 + i % 60000), "protocol": "TCP"}]}]}]}}))
PY
}
# The same allow list as iptables rules: one rule per policy (pod addresses as pilus gave them).
iptables_equivalent() {
  python3 - "$1" "$pods" <<'PY'
import sys
k, p = int(sys.argv[1]), int(sys.argv[2])
print("*filter\n:FORWARD DROP [0:0]")
for i in range(k):
    print(f"-A FORWARD -s 10.244.1.{(i + 1) % p % 250 + 1}/32 -d 10.244.1.{i % p % 250 + 1}/32 -p tcp -m tcp --dport {1000 + i % 60000} -j ACCEPT")
print("COMMIT")
PY
}
netns_create "pbcpi-$BENCH_TAG"
for k in "${policy_counts[@]}"; do
  log "controlplane: $k policies"
  policies_yaml "$k" >"$BENCH_WORK/policies-$k.yaml"
  iptables_equivalent "$k" >"$BENCH_WORK/rules-$k"
  t0=$(now_s); pilusc apply -f "$BENCH_WORK/policies-$k.yaml" >/dev/null; t1=$(now_s)
  apply_s=$(elapsed "$t0" "$t1")
  rss=$(vmhwm_kb "$AGENT_PID")
  entries=$(pilusc status -o json | python3 -c '
import json, sys
s = json.load(sys.stdin)
maps = s.get("maps") or s.get("bpf_maps") or []
print(next((m.get("entries") for m in maps if m.get("name") == "policy"), "?"))' 2>/dev/null || echo "?")
  t0=$(now_s); ip netns exec "pbcpi-$BENCH_TAG" iptables-restore <"$BENCH_WORK/rules-$k"; t1=$(now_s)
  ipt_s=$(elapsed "$t0" "$t1")
  record controlplane "Apply K policies over $pods pod identities" "K=$k" s true "$apply_s" "$ipt_s" \
    "iptables-restore of K equivalent rules (one per policy)" \
    "pilus: one pilus apply of K CiliumNetworkPolicy documents until the CLI returns (policy map entries after: $entries)"
  record controlplane "Agent peak memory (VmHWM)" "after $pods pods and K=$k policies" MiB true \
    "$(awk -v k="$rss" 'BEGIN {printf "%.1f", k / 1024}')" "$(awk -v k="$rss0" 'BEGIN {printf "%.1f", k / 1024}')" \
    "the same agent just started, no pods" ""
  t0=$(now_s); pilusc delete -f "$BENCH_WORK/policies-$k.yaml" >/dev/null; t1=$(now_s)
  record controlplane "Delete K policies" "K=$k" s true "$(elapsed "$t0" "$t1")" "" "none" ""
done
t0=$(now_s); pilusc delete -f "$BENCH_WORK/pods.yaml" >/dev/null; t1=$(now_s)

# Time to enforce: a connection exchanging 1-byte transactions stalls once the new rule drops
# its packets; watch prints when it was last answered. Negative: enforced before apply returned.
log "controlplane: time to enforce"
server_and_client_pods
client=$(pod_netns bench-client)
server=$(pod_ip bench-server)
cat >"$BENCH_WORK/deny.yaml" <<EOF
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: only-others, namespace: $AGENT_NS}
spec:
  endpointSelector: {matchLabels: {app: bench-server}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: someone-else}}]
EOF
BENCH_PORT=5001 routed_pair e 10.244.249 10.244.250
router="pber-$BENCH_TAG"

# enforce_latency_ms CLIENT_NETNS SERVER_IP "ENFORCE CMD" "UNDO CMD" -> "FROM_START FROM_RETURN" (ms)
enforce_latency_ms() {
  local out wpid t_start t_return
  timeout --foreground 20 ip netns exec "$1" "$LOADGEN" watch --host "$2" --port 5001 --seconds 10 --stall-ms 300 >"$BENCH_WORK/watch" &
  wpid=$!
  track_pid "$wpid"
  sleep 0.5
  t_start=$(date +%s%N)
  eval "$3" >/dev/null
  t_return=$(date +%s%N)
  wait "$wpid" || true
  out=$(cat "$BENCH_WORK/watch")
  eval "$4" >/dev/null
  python3 -c '
import json, sys
w = json.loads(sys.argv[1])
ms = lambda t: round((w["last_ok_ns"] - int(t)) / 1e6, 3)
print(f"{ms(sys.argv[2])} {ms(sys.argv[3])}" if w["stalled"] else "NaN NaN")' "$out" "$t_start" "$t_return"
}
p_start="" p_return="" i_start="" i_return=""
for r in $(seq "$reps"); do
  read -r a b < <(enforce_latency_ms "$client" "$server" "pilusc apply -f $BENCH_WORK/deny.yaml" "pilusc delete -f $BENCH_WORK/deny.yaml")
  p_start+=" $a" p_return+=" $b"
  read -r a b < <(enforce_latency_ms "pbec-$BENCH_TAG" 10.244.250.2 \
    "ip netns exec $router iptables -I FORWARD -s 10.244.249.2 -j DROP" \
    "ip netns exec $router iptables -D FORWARD -s 10.244.249.2 -j DROP")
  i_start+=" $a" i_return+=" $b"
done
table="Time to enforce: a policy denying an established connection"
base="iptables -I FORWARD -s CLIENT -j DROP in a router namespace"
note="the connection's last answered transaction minus when the command started / returned; negative: enforced before the command returned (process exit is counted)"
record controlplane "$table" "from the command starting" ms true "$p_start" "$i_start" "$base" "$note"
record controlplane "$table" "from the command returning" ms true "$p_return" "$i_return" "$base" "$note"
log "controlplane: done"
