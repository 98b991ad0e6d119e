#!/usr/bin/env bash
# L7 proxy: HTTP GETs from a client pod to a server pod (pilus-loadgen's HTTP/1.1 server),
# allowed by a CiliumNetworkPolicy either on the port alone (L4 only: the baseline) or with an
# HTTP rule (GET /api/.*: every connection goes through pilus's proxy), with keep-alive (GET
# after GET on one connection) and without (a connection per GET). Records requests/s, the
# median latency of each run, and the latency the proxy adds (L7 median minus L4 median of the
# same repetition). The two policies alternate repetition by repetition, so noise hits both.
source "$(dirname "$0")/lib.sh"

if [ "$BENCH_QUICK" = 1 ]; then
  seconds=1; reps=1
else
  seconds=2; reps=5
fi
http_port=5003  # pilus-loadgen serve: echo on 5001, discard on 5002, HTTP on 5003
path=/api/users

agent_start l7
server_and_client_pods
client=$(pod_netns bench-client)
server=$(pod_ip bench-server)

# policy_yaml with-l7|l4-only: the same allow of bench-client to the server's HTTP port.
policy_yaml() {
  local rules=""
  [ "$1" = with-l7 ] && rules='
      rules:
        http:
        - method: GET
          path: "/api/.*"'
  cat <<EOF
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: bench-http, namespace: $AGENT_NS}
spec:
  endpointSelector: {matchLabels: {app: bench-server}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: bench-client}}]
    toPorts:
    - ports: [{port: "$http_port", protocol: TCP}]$rules
EOF
}
policy_yaml l4-only >"$BENCH_WORK/l4-only.yaml"
policy_yaml with-l7 >"$BENCH_WORK/with-l7.yaml"

# measure KEEP_ALIVE -> "REQUESTS_PER_S P50_US", or "NaN NaN" when the run failed or a request
# was not answered 200 (the rule must allow every one of them).
measure() {
  local out
  if ! out=$(timeout --foreground $((seconds + 20)) ip netns exec "$client" "$LOADGEN" http --host "$server" \
      --port "$http_port" --path "$path" --keep-alive "$1" --seconds "$seconds") ||
     [ "$(json_field non_2xx <<<"$out")" != 0 ]; then
    log "http from $client to $server failed: $out"
    echo "NaN NaN"
    return
  fi
  echo "$(json_field per_second <<<"$out") $(json_field p50_us <<<"$out")"
}

declare -A rps=() p50=() added=()
for r in $(seq "$reps"); do
  log "l7: repetition $r of $reps"
  for ka in 1 0; do
    pilusc apply -f "$BENCH_WORK/l4-only.yaml" >/dev/null
    read -r l4_rps l4_p50 < <(measure "$ka")
    pilusc apply -f "$BENCH_WORK/with-l7.yaml" >/dev/null
    read -r l7_rps l7_p50 < <(measure "$ka")
    rps[$ka,l4]+=" $l4_rps" rps[$ka,l7]+=" $l7_rps"
    p50[$ka,l4]+=" $l4_p50" p50[$ka,l7]+=" $l7_p50"
    added[$ka]+=" $(awk -v a="$l7_p50" -v b="$l4_p50" 'BEGIN {print a - b}')"
  done
done
# The proxy really saw the L7 runs: its request counter must have moved.
l7_requests=$(curl -s "http://$AGENT_METRICS/metrics" | awk '/^hubble_http_requests_total/ {s += $2} END {printf "%d", s}')
[ "${l7_requests:-0}" -gt 0 ] || { log "l7: the proxy counted no HTTP request"; exit 1; }

declare -A mode=([1]="keep-alive (one connection)" [0]="a connection per request")
base="the same GETs allowed by port only (L4 policy, no proxy)"
note="GET $path from a client pod to a server pod; L7: rules.http GET /api/.* (through pilus's proxy); ${seconds} s per run; proxy requests counted: $l7_requests"
for ka in 1 0; do
  record l7 "HTTP requests/s through the L7 proxy" "${mode[$ka]}" "requests/s" false \
    "${rps[$ka,l7]}" "${rps[$ka,l4]}" "$base" "$note"
  record l7 "HTTP request latency through the L7 proxy (median of each run)" "${mode[$ka]}" us true \
    "${p50[$ka,l7]}" "${p50[$ka,l4]}" "$base" "$note"
  record l7 "Latency the L7 proxy adds per request (L7 median minus L4 median)" "${mode[$ka]}" us true \
    "${added[$ka]}" "" "none" "per repetition, the two runs measured back to back"
done
log "l7: done"
