#!/usr/bin/env bash
# Services: connections per second (TCP_CRR) from a client to one ClusterIP service with three
# backends while S services exist, and the time to program S services, for
#   pilus     an agent with S Services (all selecting the same three backend pods), the client
#             pod reaching the VIP through the socket load balancer (a process in pilus's
#             cgroup, as a pod's own processes are) and through the per-packet path (a
#             process started with `ip netns exec`, which from_pod DNATs)
#   iptables  kube-proxy's iptables mode: client ns -- router ns -- three backend namespaces,
#             the router's nat table holding the chains kube-proxy writes for S services
#             (KUBE-SERVICES -> KUBE-SVC-<hash> -> KUBE-SEP-<hash>, backends chosen with
#             -m statistic --mode random, DNAT), the measured service's rule last
#   floor     the same client pod to one backend pod's address, no service
# Every S's configurations are measured interleaved, repetition by repetition.
source "$(dirname "$0")/lib.sh"

if [ "$BENCH_QUICK" = 1 ]; then
  sizes=(1 1000); seconds=1; reps=1
else
  sizes=(1 1000 10000); seconds=2; reps=5
fi
vip=10.96.0.10  # the measured service's cluster IP in both; the others get 10.96.1.1 on
backend_port=5001

# services_yaml S NAMESPACE: S ClusterIP services on port 80 -> 5001, all selecting
# app=bench-server; the last one is bench-target on $vip.
services_yaml() {
  python3 - "$1" "$2" "$vip" <<'PY'
import json, sys
s, ns, vip = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def svc(name, ip):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"clusterIP": ip, "selector": {"app": "bench-server"},
                     "ports": [{"name": "http", "port": 80, "targetPort": 5001, "protocol": "TCP"}]}}
for i in range(s - 1):
    print("---")
    print(json.dumps(svc(f"svc-{i}", f"10.96.{1 + i // 250}.{i % 250 + 1}")))
print("---")
print(json.dumps(svc("bench-target", vip)))
PY
}

# kube_proxy_rules S "BACKEND IPS": the nat table kube-proxy's iptables mode writes for the same
# S services (chain names: a hash of the service port and endpoint, as kube-proxy names them),
# in iptables-restore form. KUBE-SERVICES is walked rule by rule for every new connection.
kube_proxy_rules() {
  python3 - "$1" "$2" "$vip" <<'PY'
import base64, hashlib, sys
s, backends, vip = int(sys.argv[1]), sys.argv[2].split(), sys.argv[3]
def chain(prefix, text):
    return prefix + base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]
services = [(f"bench/svc-{i}:http", f"10.96.{1 + i // 250}.{i % 250 + 1}") for i in range(s - 1)]
services.append(("bench/bench-target:http", vip))
chains, rules = [], []
for name, ip in services:
    svc = chain("KUBE-SVC-", name + "tcp")
    chains.append(svc)
    rules.append(f'-A KUBE-SERVICES -d {ip}/32 -p tcp -m comment --comment "{name} cluster IP" -m tcp --dport 80 -j {svc}')
    rules.append(f'-A {svc} ! -s 10.244.0.0/16 -d {ip}/32 -p tcp -m comment --comment "{name} cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ')
    for k, b in enumerate(backends):
        sep = chain("KUBE-SEP-", name + "tcp" + b)
        chains.append(sep)
        left = len(backends) - k
        pick = f"-m statistic --mode random --probability {1 / left:.11f} " if left > 1 else ""
        rules.append(f'-A {svc} -m comment --comment "{name} -> {b}:5001" {pick}-j {sep}')
        rules.append(f'-A {sep} -s {b}/32 -m comment --comment "{name}" -j KUBE-MARK-MASQ')
        rules.append(f'-A {sep} -p tcp -m comment --comment "{name}" -m tcp -j DNAT --to-destination {b}:5001')
rules.append('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS')
print("*nat")
for c in ["PREROUTING ACCEPT", "INPUT ACCEPT", "OUTPUT ACCEPT", "POSTROUTING ACCEPT"]:
    print(f":{c} [0:0]")
for c in ["KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"] + chains:
    print(f":{c} - [0:0]")
print('-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES')
print('-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES')
print('-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING')
print("-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000")
print("-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN")
print("-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0")
print('-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE')
print("\n".join(rules))
print("COMMIT")
PY
}

# crr NETNS HOST PORT [in-cgroup] -> connections/s, NaN on failure. in-cgroup: the client runs
# in pilus's pod cgroup, as a pod's own process (socket load balancer).
crr() {
  local out cmd=("$LOADGEN" crr --host "$2" --port "$3" --seconds "$seconds")
  if [ -n "${4:-}" ]; then
    # Into the cgroup before `ip netns exec`, which mounts a /sys of its own without it.
    out=$(timeout --foreground $((${seconds%.*} + 20)) sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' \
      "$AGENT_CGROUP" ip netns exec "$1" "${cmd[@]}") || { log "crr (cgroup) from $1 to $2 failed: $out"; echo NaN; return; }
  else
    out=$(timeout --foreground $((${seconds%.*} + 20)) ip netns exec "$1" "${cmd[@]}") || { log "crr from $1 to $2 failed: $out"; echo NaN; return; }
  fi
  json_field per_second <<<"$out"
}

log "services: kube-proxy (iptables) topology"
BENCH_PORT=$backend_port routed_pair k 10.244.245 10.244.246
kp_client="pbkc-$BENCH_TAG" kp_router="pbkr-$BENCH_TAG"
kp_backends="10.244.246.2"
for b in 1 2; do
  ns="pbkb$b-$BENCH_TAG" net="10.244.$((246 + b))"
  netns_create "$ns"
  ip link add eth0 netns "$ns" type veth peer name "to-b$b" netns "$kp_router"
  ip -n "$ns" addr add "$net.2/24" dev eth0
  ip -n "$kp_router" addr add "$net.1/24" dev "to-b$b"
  ip -n "$ns" link set eth0 up
  ip -n "$kp_router" link set "to-b$b" up
  ip -n "$ns" route add default via "$net.1"
  ip netns exec "$ns" "$LOADGEN" serve --port "$backend_port" --seconds 0 &
  track_pid $!
  kp_backends+=" $net.2"
done

log "services: pilus agent, three backend pods and a client pod"
agent_start svc --lb-max-services $((${sizes[-1]} + 64))
{
  for b in 0 1 2; do
    cat <<EOF
---
apiVersion: v1
kind: Pod
metadata: {name: bench-backend-$b, namespace: $AGENT_NS, labels: {app: bench-server}}
spec:
  containers:
  - name: loadgen
    command: ["$(readlink -f "$LOADGEN")", "serve", "--port", "$backend_port", "--seconds", "0"]
EOF
  done
  cat <<EOF
---
apiVersion: v1
kind: Pod
metadata: {name: bench-client, namespace: $AGENT_NS, labels: {app: bench-client}}
spec:
  containers:
  - name: shell
EOF
} >"$BENCH_WORK/pods.yaml"
pilusc apply -f "$BENCH_WORK/pods.yaml" >/dev/null
sleep 0.5  # the servers' listen
pilus_client=$(pod_netns bench-client)
floor_backend=$(pod_ip bench-backend-0)

tables_socket="ClusterIP TCP_CRR, pilus socket load balancer (client process in the pod's cgroup)"
tables_tc="ClusterIP TCP_CRR, pilus per-packet DNAT (client started with ip netns exec)"
base="kube-proxy iptables mode: S services' KUBE-SERVICES/KUBE-SVC/KUBE-SEP chains in a router namespace"
prev=""
for s in "${sizes[@]}"; do
  log "services: S=$s"
  services_yaml "$s" "$AGENT_NS" >"$BENCH_WORK/services-$s.yaml"
  kube_proxy_rules "$s" "$kp_backends" >"$BENCH_WORK/kube-proxy-$s"
  [ -n "$prev" ] && pilusc delete -f "$prev" >/dev/null
  t0=$(now_s); pilusc apply -f "$BENCH_WORK/services-$s.yaml" >/dev/null; t1=$(now_s)
  pilus_program=$(elapsed "$t0" "$t1")
  prev="$BENCH_WORK/services-$s.yaml"
  t0=$(now_s); ip netns exec "$kp_router" iptables-restore <"$BENCH_WORK/kube-proxy-$s"; t1=$(now_s)
  ipt_program=$(elapsed "$t0" "$t1")
  rules=$(grep -c '^-A' "$BENCH_WORK/kube-proxy-$s")
  log "services: S=$s programmed: pilus ${pilus_program} s, iptables-restore ${ipt_program} s ($rules rules)"
  [ "$s" -gt 1 ] && record services "Time to program S ClusterIP services (3 backends each)" "S=$s" s true \
    "$pilus_program" "$ipt_program" "iptables-restore of kube-proxy's nat chains for S services (11 rules each)" \
    "pilus: one pilus apply of S Service manifests until the CLI returns (the previous S deleted first)"
  floor="" ipt="" sock="" tc=""
  for r in $(seq "$reps"); do
    floor+=" $(crr "$pilus_client" "$floor_backend" "$backend_port")"
    ipt+=" $(crr "$kp_client" "$vip" 80)"
    sock+=" $(crr "$pilus_client" "$vip" 80 cgroup)"
    tc+=" $(crr "$pilus_client" "$vip" 80)"
  done
  note="S services, the measured one's KUBE-SERVICES rule last; floor: the same client pod to one backend pod's address, no service; ${seconds} s per run"
  record services "$tables_socket" "S=$s" connections/s false "$sock" "$ipt" "$base" "$note" "$floor"
  record services "$tables_tc" "S=$s" connections/s false "$tc" "$ipt" "$base" "$note" "$floor"
done
log "services: done"
