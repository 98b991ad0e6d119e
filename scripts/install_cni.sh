#!/usr/bin/env bash
# make install-cni: installs the pilus-cni plugin and the `pilus` network for container runtimes.
#   /opt/cni/bin/pilus-cni                  the plugin (podman searches /opt/cni/bin)
#   /etc/cni/net.d/pilus.conflist           the network: `podman run --network pilus ...`
#   /etc/containers/containers.conf.d/50-pilus.conf
#                                           what podman needs on this machine: runc as the OCI
#                                           runtime (crun refuses the hybrid cgroup layout) and
#                                           ulimits within the hard limits (podman's default
#                                           nofile/nproc exceed them, and runc fails to set them)
# SOCKET=PATH names the agent's API socket (default /run/pilus/pilus.sock).
set -euo pipefail
BUILD=${1:-build}
SOCKET=${SOCKET:-/run/pilus/pilus.sock}
[ "$(id -u)" = 0 ] || { echo "install-cni needs root"; exit 1; }
install -D -m 0755 "$BUILD/pilus-cni" /opt/cni/bin/pilus-cni
install -d /etc/cni/net.d
cat >/etc/cni/net.d/pilus.conflist <<CONF
{
  "cniVersion": "1.0.0",
  "name": "pilus",
  "plugins": [
    {"type": "pilus-cni", "socket": "$SOCKET"}
  ]
}
CONF
hard_nofile=$(ulimit -Hn); hard_nproc=$(ulimit -Hu)
nofile=$([ "$hard_nofile" = unlimited ] || [ "$hard_nofile" -gt 65536 ] && echo 65536 || echo "$hard_nofile")
nproc=$([ "$hard_nproc" = unlimited ] || [ "$hard_nproc" -gt 32768 ] && echo 32768 || echo "$hard_nproc")
install -d /etc/containers/containers.conf.d
cat >/etc/containers/containers.conf.d/50-pilus.conf <<CONF
# Written by pilus's make install-cni (scripts/install_cni.sh).
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"
CONF
echo "installed /opt/cni/bin/pilus-cni, /etc/cni/net.d/pilus.conflist (socket $SOCKET),"
echo "/etc/containers/containers.conf.d/50-pilus.conf (runc; nofile $nofile, nproc $nproc)"
echo "try: podman run --network pilus --label app=web --rootfs DIR CMD"
