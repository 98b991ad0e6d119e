# Shared by the benchmark scripts (sourced): what a benchmark creates is registered here and
# removed on exit, on error and on Ctrl-C; results are appended as JSON records.
#
# Environment set by bench/run.sh: BENCH_BUILD (build dir), BENCH_RECORDS (JSONL file),
# BENCH_QUICK (1 for the short form), BENCH_WORK (scratch dir, removed by run.sh).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_BUILD=${BENCH_BUILD:-build}
BENCH_QUICK=${BENCH_QUICK:-0}
LOADGEN=${LOADGEN:-$BENCH_BUILD/pilus-loadgen}
PILUS=${PILUS:-$BENCH_BUILD/pilus}
BENCH_TAG=${BENCH_TAG:-$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')}
# run.sh owns BENCH_WORK when it sets it; a script run alone removes its own.
[ -z "${BENCH_WORK:-}" ] && _own_work=1
BENCH_WORK=${BENCH_WORK:-/tmp/pilus-bench-$BENCH_TAG}
mkdir -p "$BENCH_WORK"

_tracked_pids=()
_tracked_netns=()
_tracked_agents=()  # "state_dir socket"

track_pid() { _tracked_pids+=("$1"); }
track_netns() { _tracked_netns+=("$1"); }

log() { echo "bench[$(date +%H:%M:%S)]: $*" >&2; }

bench_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  local pid ns a
  for pid in "${_tracked_pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${_tracked_pids[@]}"; do wait "$pid" 2>/dev/null; done
  for a in "${_tracked_agents[@]}"; do
    # shellcheck disable=SC2086
    set -- $a
    "$PILUS" --socket "$2" cleanup --state-dir "$1" >/dev/null 2>&1 || log "pilus cleanup of $1 failed"
    [ -n "${3:-}" ] && { kill "$3" 2>/dev/null; wait "$3" 2>/dev/null; }
  done
  for ns in "${_tracked_netns[@]}"; do ip netns delete "$ns" 2>/dev/null; done
  [ -n "${_own_work:-}" ] && rm -rf "$BENCH_WORK"
  exit "$rc"
}
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# netns NAME: a fresh namespace with loopback up, removed on exit.
netns_create() {
  ip netns add "$1"
  track_netns "$1"
  ip -n "$1" link set lo up
}

# routed_pair NAME CLIENT_NET SERVER_NET: client (CLIENT_NET.2) -- router -- server
# (SERVER_NET.2), all in namespaces this script owns; the addresses exist only inside them.
routed_pair() {
  local c="pb$1c-$BENCH_TAG" r="pb$1r-$BENCH_TAG" s="pb$1s-$BENCH_TAG" cnet=$2 snet=$3
  netns_create "$c"; netns_create "$r"; netns_create "$s"
  ip link add eth0 netns "$c" type veth peer name to-client netns "$r"
  ip link add eth0 netns "$s" type veth peer name to-server netns "$r"
  ip -n "$c" addr add "$cnet.2/24" dev eth0
  ip -n "$s" addr add "$snet.2/24" dev eth0
  ip -n "$r" addr add "$cnet.1/24" dev to-client
  ip -n "$r" addr add "$snet.1/24" dev to-server
  local dev
  for dev in "$c:eth0" "$s:eth0" "$r:to-client" "$r:to-server"; do ip -n "${dev%%:*}" link set "${dev#*:}" up; done
  ip -n "$c" route add default via "$cnet.1"
  ip -n "$s" route add default via "$snet.1"
  ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1
  ip netns exec "$s" "$LOADGEN" serve --port "${BENCH_PORT:-5001}" --seconds 0 &
  track_pid $!
}

# median of numbers (one per argument)
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# csv "1 2 3" -> "1,2,3"
csv() { local IFS=,; echo "$*"; }

# record BENCH TABLE PARAM UNIT LOWER_IS_BETTER "PILUS SAMPLES" "BASELINE SAMPLES" BASELINE_NAME [NOTE] [FLOOR SAMPLES]
# Strings must not hold double quotes; samples are space-separated numbers ("" for none).
record() {
  local floor=""
  [ -n "${10:-}" ] && floor=",\"floor\":[$(csv ${10})]"
  printf '{"bench":"%s","table":"%s","param":"%s","unit":"%s","lower_is_better":%s,"pilus":[%s],"baseline":[%s],"baseline_name":"%s","note":"%s"%s}\n' \
    "$1" "$2" "$3" "$4" "$5" "$(csv $6)" "$(csv $7)" "$8" "${9:-}" "$floor" >>"$BENCH_RECORDS"
}

# json_field FIELD: reads one flat JSON object of numbers and booleans on stdin (what
# pilus-loadgen prints), prints the field; no python start-up per measurement.
json_field() {
  local line
  line=$(cat)
  [[ $line =~ \"$1\":[[:space:]]*([^,}]*) ]] || { echo "no $1 in: $line" >&2; return 1; }
  echo "${BASH_REMATCH[1]}"
}

# unused_pod_cidr [PREFIX]: a 10.244.X.0/PREFIX (24 by default, down to 22) no route or
# address of this node mentions (as the e2e harness picks one). X stays below 248: the
# routed pairs of the benchmarks use 10.244.249-254.
unused_pod_cidr() {
  local prefix=${1:-24} taken x k free
  local width=$((1 << (24 - prefix)))
  taken=$(ip -4 route show table all; ip -4 addr show)
  for x in $(seq 200 "$width" $((248 - width)) | shuf); do
    free=1
    for k in $(seq 0 $((width - 1))); do
      grep -q "10\.244\.$((x + k))\." <<<"$taken" && { free=0; break; }
    done
    [ "$free" = 1 ] && { echo "10.244.$x.0/$prefix"; return; }
  done
  echo "no unused 10.244.X.0/$prefix left" >&2
  return 1
}

free_loopback_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# agent_start NAME [AGENT FLAGS...]: a private pilus agent (own state dir, socket, pins, device,
# cgroup, CIDR (a /24, or /$AGENT_POD_PREFIX), metrics port); sets AGENT_SOCKET, AGENT_PID, AGENT_METRICS, AGENT_NS (a pod
# namespace name unique to this agent), AGENT_CGROUP (its pods' cgroup directory).
# `pilus cleanup` removes all of it on exit.
agent_start() {
  local name=$1 dir="$BENCH_WORK/agent-$1"
  shift
  mkdir -p "$dir"
  AGENT_SOCKET="$dir/pilus.sock"
  AGENT_METRICS="127.0.0.1:$(free_loopback_port)"
  AGENT_NS="b$BENCH_TAG"
  local cidr
  cidr=$(unused_pod_cidr "${AGENT_POD_PREFIX:-24}")
  "$PILUS" agent --state-dir "$dir/state" --socket "$AGENT_SOCKET" --bpf-root "/sys/fs/bpf/pilus-bench-$BENCH_TAG" \
    --host-device "pb$BENCH_TAG" --cgroup "pilus-bench-$BENCH_TAG" --pod-cidr "$cidr" \
    --metrics-addr "$AGENT_METRICS" "$@" >"$dir/agent.log" 2>&1 &
  AGENT_PID=$!
  AGENT_CGROUP="$(findmnt -n -o TARGET -t cgroup2 | head -1)/pilus-bench-$BENCH_TAG"
  _tracked_agents+=("$dir/state $AGENT_SOCKET $AGENT_PID")
  local i
  for i in $(seq 300); do
    if "$PILUS" --socket "$AGENT_SOCKET" status -o json >/dev/null 2>&1; then break; fi
    kill -0 "$AGENT_PID" 2>/dev/null || { cat "$dir/agent.log" >&2; return 1; }
    sleep 0.1
  done
  pilusc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $AGENT_NS
EOF
}

pilusc() { "$PILUS" --socket "$AGENT_SOCKET" "$@"; }

# pod_ip NAME: the pod's address in this agent's namespace.
pod_ip() {
  pilusc get pods -n "$AGENT_NS" -o json | python3 -c '
import json, sys
for p in json.load(sys.stdin)["items"]:
    if p["metadata"]["name"] == sys.argv[1] and p["metadata"]["namespace"] == sys.argv[2]:
        print(p["status"]["podIP"])' "$1" "$AGENT_NS"
}

# server_and_client_pods: pods bench-server (pilus-loadgen serve on 5001/5002, label
# app=bench-server) and bench-client (no process, app=bench-client) in the agent's namespace.
server_and_client_pods() {
  pilusc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: bench-server, namespace: $AGENT_NS, labels: {app: bench-server}}
spec:
  containers:
  - name: loadgen
    command: ["$(readlink -f "$LOADGEN")", "serve", "--port", "5001", "--seconds", "0"]
---
apiVersion: v1
kind: Pod
metadata: {name: bench-client, namespace: $AGENT_NS, labels: {app: bench-client}}
spec:
  containers:
  - name: shell
EOF
  sleep 0.5  # the server's listen
}

# pilus_policy N: one CiliumNetworkPolicy on the server with N ingress rules (N-1 fromCIDR
# /32s, then bench-client by label), each on ports 5001-5002 (pilus-loadgen serve echo, discard).
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

pod_netns() { echo "pl-${AGENT_NS}_$1"; }

# vmhwm_kb PID: the process's peak resident set.
vmhwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", b - a}'; }
