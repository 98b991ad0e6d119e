#!/usr/bin/env bash
# Observability, three parts, all against baselines of the same run:
# 1. Paced UDP floods from a client pod to a port the server pod's policy denies (each packet
#    a policy verdict and a drop event): flows decoded and flows one `pilus observe --follow
#    -o json` reader gets, against the offered rate.
# 2. The observer at full speed: pilus-eventflood runs the agent's own pinned from_pod under
#    BPF_PROG_TEST_RUN (repeat) on the same denied packet, which fills the events ring faster
#    than two cores can send packets. Decoded = hubble_flows_processed_total during the flood;
#    baseline: the events the datapath emitted (2 per run).
# 3. The cost of observation: TCP_RR between two pods of an agent decoding with a follower
#    attached, against the same pods of a second agent started with --enable-hubble=false
#    (its ring is never read), repetitions alternating.
source "$(dirname "$0")/lib.sh"

EVENTFLOOD=${EVENTFLOOD:-$BENCH_BUILD/pilus-eventflood}
if [ "$BENCH_QUICK" = 1 ]; then
  rates=(20000); seconds=2; flood_reps=1; rr_reps=2; rr_seconds=2
else
  rates=(5000 20000 50000); seconds=4; flood_reps=3; rr_reps=5; rr_seconds=3
fi

policy() {
  cat <<EOF
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: only-others, namespace: $AGENT_NS}
spec:
  endpointSelector: {matchLabels: {app: bench-server}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: someone-else}}]
  - fromEndpoints: [{matchLabels: {app: bench-client}}]
    toPorts: [{ports: [{port: "5001", protocol: TCP}]}]
EOF
}

metric_sum() {
  curl -s "http://$AGENT_METRICS/metrics" | awk -v m="^$1" '$0 ~ m {s += $2} END {printf "%d", s}'
}

# The agent whose events are off (part 3), started first so the observed one's globals stay.
BENCH_TAG_MAIN=$BENCH_TAG
BENCH_TAG=${BENCH_TAG_MAIN}q agent_start obs-off --enable-hubble=false
off_socket=$AGENT_SOCKET off_ns=$AGENT_NS
server_and_client_pods
policy | pilusc apply -f - >/dev/null
off_client=$(pod_netns bench-client) off_server=$(pod_ip bench-server)

agent_start obs
server_and_client_pods
policy | pilusc apply -f - >/dev/null
client=$(pod_netns bench-client)
server=$(pod_ip bench-server)
client_ip=$(pod_ip bench-client)
bpf_root="/sys/fs/bpf/pilus-bench-$BENCH_TAG"

follow() {
  pilusc observe --follow -o json >"$BENCH_WORK/flows" 2>/dev/null &
  follower=$!
  track_pid "$follower"
  sleep 1  # the follower is connected and has replayed the ring; counted from here
}
flow_lines() { grep -c '^{"flow"' "$BENCH_WORK/flows" || true; }

# 1. Paced real packets.
for rate in "${rates[@]}"; do
  label="$rate packets/s"
  log "observe: $label"
  follow
  lines0=$(flow_lines)
  lost0=$(metric_sum hubble_lost_events_total)
  decoded0=$(metric_sum hubble_flows_processed_total)
  out=$(timeout --foreground $((seconds + 10)) ip netns exec "$client" "$LOADGEN" udpflood --host "$server" --port 9 \
    --count $((rate * seconds)) --rate "$rate" --seconds "$seconds")
  sleep 1  # the agent drains the ring
  kill "$follower"; wait "$follower" 2>/dev/null || true
  sent=$(json_field sent <<<"$out")
  sent_rate=$(json_field per_second <<<"$out")
  t=$(json_field seconds <<<"$out")
  lost=$(( $(metric_sum hubble_lost_events_total) - lost0 ))
  decoded=$(( $(metric_sum hubble_flows_processed_total) - decoded0 ))
  received=$(( $(flow_lines) - lines0 ))
  decoded_rate=$(awk -v d="$decoded" -v t="$t" 'BEGIN {printf "%.1f", d / t}')
  received_rate=$(awk -v f="$received" -v t="$t" 'BEGIN {printf "%.1f", f / t}')
  record observe "Flows decoded by the agent at a flood of denied UDP packets" "$label" "flows/s" false "$decoded_rate" \
    "$sent_rate" "packets offered per second" \
    "decoded = hubble_flows_processed_total; 2 events per denied packet (a policy verdict and a drop), so 2 is no loss; ${seconds} s floods of 16-byte UDP packets"
  record observe "Flows delivered to one pilus observe --follow -o json reader" "$label" "flows/s" false "$received_rate" \
    "$decoded_rate" "flows decoded per second" "the rest overflowed the agent's 4096-flow ring before the reader got them"
  record observe "Events lost by the datapath (ring buffer full)" "$label ($sent packets)" events true "$lost" "" "none" \
    "hubble_lost_events_total, the kernel-side loss"
done

# 2. The observer at full speed, one flooding process (the other core decodes).
declare -a emitted_rates=() decoded_rates=() received_rates=() lost_counts=()
for r in $(seq "$flood_reps"); do
  log "observe: BPF_PROG_TEST_RUN flood, repetition $r of $flood_reps"
  follow
  lines0=$(flow_lines)
  lost0=$(metric_sum hubble_lost_events_total)
  decoded0=$(metric_sum hubble_flows_processed_total)
  out=$(timeout --foreground $((seconds + 10)) "$EVENTFLOOD" --bpf-root "$bpf_root" --src "$client_ip" --dst "$server" \
    --port 9 --seconds "$seconds" --repeat 2000)
  # Counted at the end of the flood, not after a drain: the rates are what kept up.
  decoded=$(( $(metric_sum hubble_flows_processed_total) - decoded0 ))
  received=$(( $(flow_lines) - lines0 ))
  sleep 1
  kill "$follower"; wait "$follower" 2>/dev/null || true
  lost=$(( $(metric_sum hubble_lost_events_total) - lost0 ))
  t=$(json_field seconds <<<"$out")
  runs=$(json_field runs <<<"$out")
  emitted_rates+=("$(awk -v n="$runs" -v t="$t" 'BEGIN {printf "%.1f", 2 * n / t}')")
  decoded_rates+=("$(awk -v d="$decoded" -v t="$t" 'BEGIN {printf "%.1f", d / t}')")
  received_rates+=("$(awk -v f="$received" -v t="$t" 'BEGIN {printf "%.1f", f / t}')")
  lost_counts+=("$lost")
done
label="BPF_PROG_TEST_RUN flood, 1 process"
record observe "Flows decoded by the agent at full speed" "$label" "flows/s" false "${decoded_rates[*]}" \
  "${emitted_rates[*]}" "events the datapath emitted per second" \
  "pilus-eventflood: the agent's pinned from_pod on a denied UDP packet under BPF_PROG_TEST_RUN (repeat 2000), 2 events a run; decoded = hubble_flows_processed_total during the ${seconds} s flood, a follower attached"
record observe "Flows delivered to one pilus observe --follow -o json reader at full speed" "$label" "flows/s" false \
  "${received_rates[*]}" "${decoded_rates[*]}" "flows decoded per second" \
  "flow lines the reader had written by the end of the flood"
record observe "Events lost by the datapath at full speed (ring buffer full)" "$label" events true "${lost_counts[*]}" "" "none" \
  "hubble_lost_events_total during the flood and 1 s after"

# 3. What observing costs a request/response workload.
follow
declare -a rr_on=() rr_off=()
for r in $(seq "$rr_reps"); do
  log "observe: TCP_RR with and without the observer, repetition $r of $rr_reps"
  on=$(timeout --foreground $((rr_seconds + 20)) ip netns exec "$client" "$LOADGEN" rr --host "$server" --port 5001 \
    --seconds "$rr_seconds" | json_field per_second) || on=NaN
  off=$(timeout --foreground $((rr_seconds + 20)) ip netns exec "$off_client" "$LOADGEN" rr --host "$off_server" --port 5001 \
    --seconds "$rr_seconds" | json_field per_second) || off=NaN
  rr_on+=("$on") rr_off+=("$off")
done
kill "$follower"; wait "$follower" 2>/dev/null || true
record observe "TCP_RR with the observer on (decoding, one follower attached)" "pod to pod, 1 connection" \
  "transactions/s" false "${rr_on[*]}" "${rr_off[*]}" "the same pods under an agent started with --enable-hubble=false" \
  "${rr_seconds} s runs, alternating between the two agents"
log "observe: done"
