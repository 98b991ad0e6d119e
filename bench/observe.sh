#!/usr/bin/env bash
# Observability: a client pod floods a server pod with short UDP packets to a port its policy
# denies, so every packet is a drop event; `pilus observe --follow -o json` counts the flows it
# receives, and the lost events are read from the stream and from hubble_lost_events_total.
# The baseline is the offered rate: flows/s over packets/s is the share observed.
source "$(dirname "$0")/lib.sh"

if [ "$BENCH_QUICK" = 1 ]; then
  rates=(20000 0); seconds=2
else
  rates=(5000 20000 50000 0); seconds=4
fi

agent_start obs
server_and_client_pods
client=$(pod_netns bench-client)
server=$(pod_ip bench-server)
pilusc apply -f - >/dev/null <<EOF
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: only-others, namespace: $AGENT_NS}
spec:
  endpointSelector: {matchLabels: {app: bench-server}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: someone-else}}]
EOF

lost_metric() {
  curl -s "http://$AGENT_METRICS/metrics" | awk '/^hubble_lost_events_total/ {s += $2} END {printf "%d", s}'
}

drop_metric() {
  curl -s "http://$AGENT_METRICS/metrics" | awk '/^cilium_drop_count_total/ {s += $2} END {printf "%d", s}'
}

for rate in "${rates[@]}"; do
  label="$rate packets/s"
  [ "$rate" = 0 ] && label="unpaced, one sender per core"
  log "observe: $label"
  pilusc observe --follow -o json >"$BENCH_WORK/flows" 2>/dev/null &
  follower=$!
  track_pid "$follower"
  sleep 1  # the follower is connected and has replayed the ring; counted from here
  lines0=$(wc -l <"$BENCH_WORK/flows")
  lost0=$(lost_metric)
  drops0=$(drop_metric)
  # The unpaced form runs one sender per core, to get as close to saturation as this machine can.
  senders=1
  [ "$rate" = 0 ] && senders=$(nproc)
  count=$((rate > 0 ? rate * seconds : 100000000))
  flooders=()
  for k in $(seq "$senders"); do
    timeout --foreground $((seconds + 10)) ip netns exec "$client" "$LOADGEN" udpflood --host "$server" --port 9 \
      --count "$count" --rate "$rate" --seconds "$seconds" >"$BENCH_WORK/flood-$k" &
    flooders+=($!)
    track_pid $!
  done
  wait "${flooders[@]}" 2>/dev/null || true
  out=$(cat "$BENCH_WORK"/flood-* | python3 -c '
import json, sys
rs = [json.loads(l) for l in sys.stdin if l.strip()]
sent, secs = sum(r["sent"] for r in rs), max(r["seconds"] for r in rs)
print(json.dumps({"sent": sent, "seconds": secs, "per_second": round(sent / secs, 1)}))')
  rm -f "$BENCH_WORK"/flood-*
  sleep 1  # the agent drains the ring
  kill "$follower"; wait "$follower" 2>/dev/null || true
  sent=$(json_field sent <<<"$out")
  sent_rate=$(json_field per_second <<<"$out")
  lost=$(( $(lost_metric) - lost0 ))
  drops=$(( $(drop_metric) - drops0 ))
  # Each denied packet makes two datapath events (a policy verdict and a drop), so the events
  # emitted are twice the packets cilium_drop_count_total counted; with no kernel-side loss
  # the agent read and decoded every one of them.
  read -r received < <(tail -n +"$((lines0 + 1))" "$BENCH_WORK/flows" | python3 -c '
import json, sys
flows = 0
for line in sys.stdin:
    try:
        j = json.loads(line)
    except ValueError:
        continue
    if "lost_events" not in j:
        flows += 1
print(flows)')
  t=$(json_field seconds <<<"$out")
  emitted_rate=$(awk -v d="$drops" -v l="$lost" -v t="$t" 'BEGIN {printf "%.1f", (2 * d - l) / t}')
  received_rate=$(awk -v f="$received" -v t="$t" 'BEGIN {printf "%.1f", f / t}')
  record observe "Flows decoded by the agent at a flood of denied UDP packets" "$label" "flows/s" false "$emitted_rate" \
    "$sent_rate" "packets offered per second" \
    "decoded = 2 events per dropped packet (cilium_drop_count_total) minus kernel-side losses; 2 per packet is no loss; ${seconds} s floods of 16-byte UDP packets"
  record observe "Flows delivered to one pilus observe --follow -o json reader" "$label" "flows/s" false "$received_rate" \
    "$emitted_rate" "flows decoded per second" "the rest overflowed the agent's 4096-flow ring before the reader got them"
  record observe "Events lost by the datapath (ring buffer full)" "$label ($sent packets)" events true "$lost" "" "none" \
    "hubble_lost_events_total, the kernel-side loss"
done
[ -n "${BENCH_KEEP_FLOWS:-}" ] && cp "$BENCH_WORK/flows" "$BENCH_KEEP_FLOWS"
log "observe: done"
