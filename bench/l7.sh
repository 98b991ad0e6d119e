#!/usr/bin/env bash
# L7 proxy: HTTP GETs from a client pod to a server pod (pilus-loadgen's HTTP/1.1 server),
# allowed by a CiliumNetworkPolicy either on the port alone (L4 only: the baseline) or with an
# HTTP rule (GET /api/.*: every connection goes through pilus's proxy), with keep-alive (GET
# after GET on one connection) and without (a connection per GET). Side by side, the reference
# proxy: Debian's HAProxy in a third pod with the same rule (GET /api/.* allowed, 403
# otherwise) in front of the same server, under the L4-only policy. Records requests/s, the
# median latency of each run, and the latency each proxy adds (its median minus the L4 median
# of the same repetition). The three alternate repetition by repetition, so noise hits all.
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
pilusc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: bench-haproxy, namespace: $AGENT_NS, labels: {app: bench-haproxy}}
spec:
  containers:
  - name: shell
EOF
client=$(pod_netns bench-client)
server=$(pod_ip bench-server)
haproxy_ip=$(pod_ip bench-haproxy)
haproxy_port=8080
haproxy_version=$(haproxy -v 2>/dev/null | head -1 | awk '{print $3}')
# The same rule as rules.http GET /api/.* (Cilium matches the whole path), 403 otherwise; two
# threads as pilus's proxy; server connections reused as HAProxy does by default.
cat >"$BENCH_WORK/haproxy.cfg" <<EOF
global
  nbthread 2
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend api
  bind $haproxy_ip:$haproxy_port
  acl get method GET
  acl api path_reg ^/api/.*\$
  http-request deny deny_status 403 unless get api
  default_backend server
backend server
  http-reuse safe
  server s1 $server:$http_port
EOF
ip netns exec "$(pod_netns bench-haproxy)" haproxy -db -f "$BENCH_WORK/haproxy.cfg" >"$BENCH_WORK/haproxy.log" 2>&1 &
track_pid $!

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
  - fromEndpoints: [{matchLabels: {app: bench-haproxy}}]
    toPorts:
    - ports: [{port: "$http_port", protocol: TCP}]
EOF
}
policy_yaml l4-only >"$BENCH_WORK/l4-only.yaml"
policy_yaml with-l7 >"$BENCH_WORK/with-l7.yaml"

# measure KEEP_ALIVE [HOST PORT] -> "REQUESTS_PER_S P50_US", or "NaN NaN" when the run failed or
# a request was not answered 200 (the rule must allow every one of them).
measure() {
  local out
  if ! out=$(timeout --foreground $((seconds + 20)) ip netns exec "$client" "$LOADGEN" http --host "${2:-$server}" \
      --port "${3:-$http_port}" --path "$path" --keep-alive "$1" --seconds "$seconds") ||
     [ "$(json_field non_2xx <<<"$out")" != 0 ]; then
    log "http from $client to $server failed: $out"
    echo "NaN NaN"
    return
  fi
  echo "$(json_field per_second <<<"$out") $(json_field p50_us <<<"$out")"
}

# status_of HOST PORT PATH: the HTTP status a GET from the client pod gets.
status_of() {
  ip netns exec "$client" curl -s -o /dev/null -m 5 -w '%{http_code}' "http://$1:$2$3" || true
}
# Both proxies apply the same rule: /api/users passes, /private is refused with 403.
pilusc apply -f "$BENCH_WORK/with-l7.yaml" >/dev/null
for proxy in "$server $http_port pilus" "$haproxy_ip $haproxy_port HAProxy"; do
  set -- $proxy
  for i in $(seq 50); do [ "$(status_of "$1" "$2" "$path")" = 200 ] && break; sleep 0.1; done
  ok=$(status_of "$1" "$2" "$path") refused=$(status_of "$1" "$2" /private)
  [ "$ok" = 200 ] && [ "$refused" = 403 ] ||
    { log "l7: $3 does not apply the rule: $path -> $ok, /private -> $refused"; cat "$BENCH_WORK/haproxy.log" >&2; exit 1; }
done

declare -A rps=() p50=() added=()
for r in $(seq "$reps"); do
  log "l7: repetition $r of $reps"
  for ka in 1 0; do
    pilusc apply -f "$BENCH_WORK/l4-only.yaml" >/dev/null
    read -r l4_rps l4_p50 < <(measure "$ka")
    read -r ha_rps ha_p50 < <(measure "$ka" "$haproxy_ip" "$haproxy_port")
    pilusc apply -f "$BENCH_WORK/with-l7.yaml" >/dev/null
    read -r l7_rps l7_p50 < <(measure "$ka")
    rps[$ka,l4]+=" $l4_rps" rps[$ka,l7]+=" $l7_rps" rps[$ka,ha]+=" $ha_rps"
    p50[$ka,l4]+=" $l4_p50" p50[$ka,l7]+=" $l7_p50" p50[$ka,ha]+=" $ha_p50"
    added[$ka,l7]+=" $(awk -v a="$l7_p50" -v b="$l4_p50" 'BEGIN {print a - b}')"
    added[$ka,ha]+=" $(awk -v a="$ha_p50" -v b="$l4_p50" 'BEGIN {print a - b}')"
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
    "${added[$ka,l7]}" "${added[$ka,ha]}" "HAProxy $haproxy_version's, the same way" \
    "per repetition, the runs measured back to back"
  record l7 "HTTP requests/s, pilus's proxy against HAProxy" "${mode[$ka]}" "requests/s" false \
    "${rps[$ka,l7]}" "${rps[$ka,ha]}" "HAProxy $haproxy_version (Debian) in a third pod, the same rule, between the same pods" \
    "HAProxy: mode http, acl method GET and path_reg ^/api/.*, http-request deny 403 otherwise, nbthread 2, http-reuse safe; under the L4-only policy"
  record l7 "HTTP request latency, pilus's proxy against HAProxy (median of each run)" "${mode[$ka]}" us true \
    "${p50[$ka,l7]}" "${p50[$ka,ha]}" "HAProxy $haproxy_version (Debian) in a third pod, the same rule, between the same pods"
done
log "l7: done"
