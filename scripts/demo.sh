#!/usr/bin/env bash
# make demo: start the agent, create the demo pods, show them talking through
# the eBPF datapath, print status; then clean everything up (KEEP=1 keeps it).
set -euo pipefail
BUILD=${1:-build}
PILUS="$(cd "$BUILD" && pwd)/pilus"
LOG=/tmp/pilus-demo-agent.log
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

[ "$(id -u)" = 0 ] || { echo "the demo needs root (BPF programs, network namespaces)"; exit 1; }
if [ -S /run/pilus/pilus.sock ] && "$PILUS" status >/dev/null 2>&1; then
  echo "an agent is already running on /run/pilus/pilus.sock; stop it (pilus cleanup) first"; exit 1
fi

# A host outside the node: a namespace of the demo's own, linked to the node by a veth
# with a /30 of the benchmarking range (198.18.0.0/15). The node reaches it; pods must not.
OUTSIDE_NS=pl-demo-outside-$$ OUTSIDE_LINK=pdo$$ OUTSIDE_NODE_IP=198.18.250.1 OUTSIDE_IP=198.18.250.2
remove_outside() { ip netns delete "$OUTSIDE_NS" 2>/dev/null || true; }
cleanup() {
  remove_outside
  declare -F remove_container >/dev/null && remove_container
  if [ "${KEEP:-0}" = 1 ]; then
    say "KEEP=1: the agent (pid $AGENT_PID) and pods stay; remove them with: $PILUS cleanup"
  else
    say "Cleaning up (run with KEEP=1 to keep the pods and the agent)"
    "$PILUS" cleanup || true
  fi
}

say "Starting the agent (log: $LOG)"
"$PILUS" agent >"$LOG" 2>&1 &
AGENT_PID=$!
trap cleanup EXIT
for _ in $(seq 50); do "$PILUS" status >/dev/null 2>&1 && break; sleep 0.2; done
"$PILUS" status >/dev/null || { cat "$LOG"; exit 1; }

say "Creating pods from examples/demo/pods.yaml"
run "$PILUS" apply -f "$(dirname "$0")/../examples/demo/pods.yaml"
run "$PILUS" get pods

ip_of() { "$PILUS" get pods "$1" -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"]["podIP"])'; }
in_pod() { local pod=$1; shift; ip netns exec "pl-default_$pod" "$@"; }
BACKEND=$(ip_of backend); POSTGRES=$(ip_of postgres)
ROUTER=$("$PILUS" status -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["routerIP"])')
for _ in $(seq 50); do in_pod frontend curl -s -o /dev/null "http://$BACKEND/" && break; sleep 0.2; done

say "frontend -> backend: HTTP on port 80 (pod to pod, redirected by the TC program)"
run in_pod frontend curl -s -o /dev/null -w "HTTP %{http_code} from $BACKEND in %{time_total}s\n" "http://$BACKEND/"
say "backend -> postgres: TCP 5432"
run in_pod backend socat -T2 - "TCP:$POSTGRES:5432" </dev/null
say "frontend -> node ($ROUTER): ICMP"
run in_pod frontend ping -c 2 -W 1 "$ROUTER"
say "An outside host ($OUTSIDE_IP in namespace $OUTSIDE_NS, linked to the node): the node reaches it"
ip netns add "$OUTSIDE_NS"
ip link add "$OUTSIDE_LINK" type veth peer name eth0 netns "$OUTSIDE_NS"
ip addr add "$OUTSIDE_NODE_IP/30" dev "$OUTSIDE_LINK" && ip link set "$OUTSIDE_LINK" up
ip -n "$OUTSIDE_NS" addr add "$OUTSIDE_IP/30" dev eth0 && ip -n "$OUTSIDE_NS" link set eth0 up
run ping -c 1 -W 1 "$OUTSIDE_IP"
say "frontend -> $OUTSIDE_IP (outside the node): dropped by the datapath (NO_ROUTE_TO_OUTSIDE), never handed to the node"
run in_pod frontend ping -c 1 -W 1 "$OUTSIDE_IP" || echo "(no reply, as intended)"
run "$PILUS" observe --to-ip "$OUTSIDE_IP" --verdict DROPPED --last 1
remove_outside

say "Applying the seed's allow-http NetworkPolicy (examples/policies/allow-http.yaml)"
run "$PILUS" apply -f "$(dirname "$0")/../examples/policies/allow-http.yaml"
run "$PILUS" get policies
say "frontend -> backend:80: allowed by allow-http"
run in_pod frontend curl -s -o /dev/null -w "HTTP %{http_code}\n" "http://$BACKEND/"
say "postgres -> backend:80: denied, postgres is not the frontend (dropped in the kernel, POLICY_DENIED)"
run in_pod postgres curl -s -m 2 -o /dev/null "http://$BACKEND/" || echo "(no answer: dropped by policy, as intended)"
run "$PILUS" policy trace --from default/postgres --to default/backend --dport 80/tcp
run "$PILUS" policy trace --from default/frontend --to default/backend --dport 80/tcp
say "The backend's policy map entries, as the datapath sees them"
run "$PILUS" bpf policy get default/backend

say "A Service in front of two backends (examples/demo/service.yaml)"
run "$PILUS" apply -f "$(dirname "$0")/../examples/demo/service.yaml"
VIP=$("$PILUS" get services backend -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["spec"]["clusterIP"])')
for _ in $(seq 50); do in_pod backend-2 true && in_pod frontend curl -s -m 1 -o /dev/null "http://$VIP/" && break; sleep 0.2; done
run "$PILUS" get services
run "$PILUS" bpf lb list
say "frontend -> $VIP:80, 20 connections: the datapath picks a backend for each (Maglev)"
CT_BEFORE=$("$PILUS" bpf ct -o json)
for _ in $(seq 20); do in_pod frontend curl -s -m 2 -o /dev/null "http://$VIP/" || true; done
"$PILUS" bpf ct -o json | CT_BEFORE="$CT_BEFORE" python3 -c '
import json, os, sys, collections
key = lambda e: (e["source"], e["destination"], e["scope"])
before = {key(e) for e in json.loads(os.environ["CT_BEFORE"])["items"]}
seen = collections.Counter(e["destination"] for e in json.load(sys.stdin)["items"]
                           if e["scope"] == "egress" and key(e) not in before)
for dest, n in sorted(seen.items()): print(f"  backend {dest}: {n} new connections")'
say "L7: the seed's allow-api-only policy instead (examples/policies/allow-api-only.yaml): only GET /api/.* from the frontend"
run "$PILUS" delete -f "$(dirname "$0")/../examples/policies/allow-http.yaml"
run "$PILUS" apply -f "$(dirname "$0")/../examples/policies/allow-api-only.yaml"
say "GET /api/users: allowed by the L7 proxy and forwarded (python's http.server answers 404: it has no such file)"
run in_pod frontend curl -s -o /dev/null -w "HTTP %{http_code}\n" "http://$BACKEND/api/users"
say "POST /api/users and GET /admin: denied by the proxy with 403"
run in_pod frontend curl -s -X POST -w " (HTTP %{http_code})\n" "http://$BACKEND/api/users"
run in_pod frontend curl -s -w " (HTTP %{http_code})\n" "http://$BACKEND/admin"
say "The L7 flows of these requests"
run "$PILUS" observe --protocol http
run "$PILUS" observe --protocol http --http-status 403 -o json --last 1

say "Flows of the demo traffic (pilus observe), dropped ones with their reason"
run "$PILUS" observe --last 30
run "$PILUS" observe --verdict DROPPED
echo "Follow them live with: pilus observe --follow   (KEEP=1 make demo keeps the agent running)"

# A container of a real runtime (podman, through pilus-cni) is a pod like the others. Each step
# checks its result: a failure here is reported and the container removed, the demo goes on.
DEMO_CTR=pilus-demo-web-$$ DEMO_ROOTFS=
remove_container() {
  podman rm -f -t 0 "$DEMO_CTR" >/dev/null 2>&1 || true
  [ -z "$DEMO_ROOTFS" ] || rm -rf "$DEMO_ROOTFS"
}
demo_container() {
  say "A podman container on pilus's network: make install-cni, then podman run --network pilus"
  run bash "$(dirname "$0")/install_cni.sh" "$BUILD" || return 1
  DEMO_ROOTFS=$(mktemp -d /tmp/pilus-demo-rootfs.XXXXXX)
  mkdir -p "$DEMO_ROOTFS/bin" && cp /bin/busybox "$DEMO_ROOTFS/bin/" && ln -s busybox "$DEMO_ROOTFS/bin/sh" || return 1
  run podman run -d --name "$DEMO_CTR" --network pilus --label app=backend --rootfs "$DEMO_ROOTFS" \
    /bin/busybox httpd -f -p 80 -h /bin >/dev/null || return 1
  run "$PILUS" get pods || return 1
  CTR_IP=$("$PILUS" get pods "$DEMO_CTR" -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"]["podIP"])') || return 1
  say "The container has the backend's labels, so the backend's L7 policy applies to it too"
  run in_pod frontend curl -s -o /dev/null -w "GET /api/users: HTTP %{http_code} (allowed; busybox httpd has no such file)\n" "http://$CTR_IP/api/users" || true
  run in_pod frontend curl -s -o /dev/null -w "GET /admin: HTTP %{http_code} (denied by the proxy)\n" "http://$CTR_IP/admin" || true
}
if command -v podman >/dev/null; then
  demo_container || echo "(the podman part of the demo failed: see the lines above)"
  remove_container
fi

say "Agent status"
run "$PILUS" status
say "Connections tracked by the datapath"
run "$PILUS" bpf ct
say "Per-endpoint counters (forwarded and dropped, with reasons)"
run "$PILUS" bpf endpoints
