#!/usr/bin/env bash
# Container start to ready with podman: `podman run` until the container's first HTTP request to
# a server container is answered, on pilus's network (pilus-cni) and on podman's bridge CNI,
# interleaved in one run. Both networks live in a private configuration directory; the bridge one
# is podman's default bridge conflist without what would touch the host beyond its own bridge:
# no ipMasq (NAT rules), no portmap and firewall plugins (iptables), isGateway false (the bridge
# plugin would otherwise turn on the host's net.ipv4.ip_forward); containers on it talk over
# the bridge directly. Podman runs with runc and explicit ulimits (what this machine needs).
# Standalone: bash bench/cni.sh [BUILD_DIR] (RUNS=N pairs, default 10; 4 in the quick form).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[ -n "${1:-}" ] && { BENCH_BUILD=$1; PILUS=$1/pilus; }
CNI_BIN=$(cd "$(dirname "$PILUS")" && pwd)/pilus-cni
BENCH_RECORDS=${BENCH_RECORDS:-$BENCH_WORK/records.jsonl}
command -v podman >/dev/null || { log "podman is not installed (scripts/deps.sh)"; exit 1; }
RUNS=${RUNS:-$([ "$BENCH_QUICK" = 1 ] && echo 4 || echo 10)}

agent_start cni
W=$BENCH_WORK/cni
mkdir -p "$W/rootfs/bin" "$W/rootfs/www" "$W/rootfs/ready" "$W/net.d" "$W/bin"
cp /bin/busybox "$W/rootfs/bin/busybox"
ln -s busybox "$W/rootfs/bin/sh"
echo ok >"$W/rootfs/www/index.html"
ln -s "$CNI_BIN" "$W/bin/pilus-cni"
for p in bridge host-local loopback; do ln -s "/usr/lib/cni/$p" "$W/bin/$p"; done
bridge_cidr=$(unused_pod_cidr)
bridge_dev="pbb$BENCH_TAG"
cat >"$W/net.d/pilus-$BENCH_TAG.conflist" <<CONF
{"cniVersion": "1.0.0", "name": "pilus-$BENCH_TAG",
 "plugins": [{"type": "pilus-cni", "socket": "$AGENT_SOCKET"}]}
CONF
cat >"$W/net.d/bridge-$BENCH_TAG.conflist" <<CONF
{"cniVersion": "0.4.0", "name": "bridge-$BENCH_TAG",
 "plugins": [{"type": "bridge", "bridge": "$bridge_dev", "isGateway": false, "ipMasq": false, "hairpinMode": true,
              "ipam": {"type": "host-local", "routes": [], "ranges": [[{"subnet": "$bridge_cidr"}]],
                       "dataDir": "$W/ipam"}}]}
CONF
cat >"$W/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
[network]
network_backend = "cni"
cni_plugin_dirs = ["$W/bin"]
network_config_dir = "$W/net.d"
CONF
pm() { CONTAINERS_CONF="$W/containers.conf" podman --network-config-dir "$W/net.d" "$@"; }
containers=()
remove_containers() {
  local c
  for c in "${containers[@]}"; do pm rm -f -t 0 "$c" >/dev/null 2>&1; done
  ip link delete "$bridge_dev" 2>/dev/null || true
}
trap 'rc=$?; remove_containers; (exit $rc); bench_cleanup' EXIT

# A server on each network, then RUNS clients each, interleaved.
server_ip() {
  pm inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$1"
}
for net in pilus bridge; do
  c="pbs-$net-$BENCH_TAG"
  containers+=("$c")
  pm run -d --name "$c" --network "$net-$BENCH_TAG" --rootfs "$W/rootfs" /bin/busybox httpd -f -p 8080 -h /www >/dev/null
done
declare -A server=([pilus]=$(server_ip "pbs-pilus-$BENCH_TAG") [bridge]=$(server_ip "pbs-bridge-$BENCH_TAG"))
log "servers: pilus ${server[pilus]}, bridge ${server[bridge]} ($bridge_cidr on $bridge_dev)"

# One measurement: ms from `podman run` to the marker the container writes after its first answer.
measure() {
  local net=$1 i=$2 c="pbc-$1-$2-$BENCH_TAG"
  containers+=("$c")
  python3 - "$W" "$c" "$net-$BENCH_TAG" "${server[$net]}" <<'PY'
import os, subprocess, sys, time
w, name, net, ip = sys.argv[1:]
marker = f"{w}/rootfs/ready/{name}"
env = dict(os.environ, CONTAINERS_CONF=f"{w}/containers.conf")
t0 = time.monotonic()
p = subprocess.Popen(["podman", "--network-config-dir", f"{w}/net.d", "run", "-d", "--name", name, "--network", net,
                      "--rootfs", f"{w}/rootfs", "/bin/busybox", "sh", "-c",
                      f"until printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 1 {ip} 8080 | /bin/busybox grep -q '200 OK'; do :; done; /bin/busybox touch /ready/{name}; /bin/busybox sleep 600"],
                     env=env, stdout=subprocess.DEVNULL)
while not os.path.exists(marker):
    if time.monotonic() - t0 > 60: sys.exit(f"{name}: not ready in 60 s")
    time.sleep(0.001)
print(f"{(time.monotonic() - t0) * 1000:.1f}")
p.wait()
PY
  pm rm -f -t 0 "$c" >/dev/null
}
pilus_ms=() bridge_ms=()
for i in $(seq 1 "$RUNS"); do
  pilus_ms+=("$(measure pilus "$i")")
  bridge_ms+=("$(measure bridge "$i")")
  log "run $i: pilus ${pilus_ms[-1]} ms, bridge ${bridge_ms[-1]} ms"
done
p=$(median "${pilus_ms[@]}") b=$(median "${bridge_ms[@]}")
log "median: pilus $p ms, bridge $b ms, pilus/bridge $(awk -v a="$p" -v b="$b" 'BEGIN {printf "%.2f", a / b}')"
record cni "Container start to ready (podman run to the first answered request)" "$RUNS runs each, interleaved" ms true \
  "${pilus_ms[*]}" "${bridge_ms[*]}" "podman bridge CNI (no ipMasq, no portmap, isGateway false)" \
  "busybox-static rootfs, runc; pilus: pilus-cni asking the agent"
