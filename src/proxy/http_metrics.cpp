#include "proxy/http_metrics.h"

#include <fmt/format.h>

namespace pilus::proxy {

namespace {

std::string reporter(const HttpExchange& x) { return x.origin.ingress ? "server" : "client"; }

// Methods are client-chosen text: keep label cardinality bounded.
std::string method_label(const std::string& m) {
  for (const char* known : {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
    if (m == known) return m;
  return "OTHER";
}

}  // namespace

void HttpMetrics::observe(const HttpExchange& x, bool response) {
  std::lock_guard<std::mutex> l(mu_);
  std::string method = method_label(x.method);
  if (!response) {
    requests_[{method, x.protocol, reporter(x)}]++;
    return;
  }
  if (!x.responded) return;
  responses_[{method, std::to_string(x.status), x.allowed ? "FORWARDED" : "DROPPED", reporter(x)}]++;
  Histogram& h = latency_[{method, reporter(x)}];
  double seconds = std::chrono::duration<double>(x.latency).count();
  for (size_t i = 0; i < kBuckets.size(); i++)
    if (seconds <= kBuckets[i]) h.buckets[i]++;
  h.count++;
  h.sum += seconds;
}

void HttpMetrics::render(metrics::PrometheusText& t, const ProxyStats& s) const {
  std::lock_guard<std::mutex> l(mu_);
  t.family("hubble_http_requests_total", "counter", "HTTP requests seen by the L7 proxy, by method.");
  for (const auto& [k, n] : requests_)
    t.sample("hubble_http_requests_total",
             {{"method", std::get<0>(k)}, {"protocol", std::get<1>(k)}, {"reporter", std::get<2>(k)}}, double(n));
  t.family("hubble_http_responses_total", "counter", "HTTP responses sent by the L7 proxy, by method, status and verdict.");
  for (const auto& [k, n] : responses_)
    t.sample("hubble_http_responses_total",
             {{"method", std::get<0>(k)}, {"status", std::get<1>(k)}, {"verdict", std::get<2>(k)}, {"reporter", std::get<3>(k)}},
             double(n));
  t.family("hubble_http_request_duration_seconds", "histogram",
           "Time from a request read by the proxy to its response headers, in seconds.");
  for (const auto& [k, h] : latency_) {
    for (size_t i = 0; i < kBuckets.size(); i++)
      t.sample("hubble_http_request_duration_seconds_bucket",
               {{"method", k.first}, {"reporter", k.second}, {"le", fmt::format("{}", kBuckets[i])}}, double(h.buckets[i]));
    t.sample("hubble_http_request_duration_seconds_bucket", {{"method", k.first}, {"reporter", k.second}, {"le", "+Inf"}},
             double(h.count));
    t.sample("hubble_http_request_duration_seconds_sum", {{"method", k.first}, {"reporter", k.second}}, h.sum);
    t.sample("hubble_http_request_duration_seconds_count", {{"method", k.first}, {"reporter", k.second}}, double(h.count));
  }
  t.family("cilium_policy_l7_total", "counter", "L7 requests by what the proxy did with them.");
  t.sample("cilium_policy_l7_total", {{"rule", "received"}, {"proxy_type", "http"}}, double(s.requests));
  t.sample("cilium_policy_l7_total", {{"rule", "forwarded"}, {"proxy_type", "http"}}, double(s.forwarded));
  t.sample("cilium_policy_l7_total", {{"rule", "denied"}, {"proxy_type", "http"}}, double(s.denied));
  t.sample("cilium_policy_l7_total", {{"rule", "parse_errors"}, {"proxy_type", "http"}}, double(s.parse_errors));
  t.family("pilus_proxy_connections_total", "counter", "Connections the datapath redirected to the L7 proxy.");
  t.sample("pilus_proxy_connections_total", double(s.connections));
  t.family("pilus_proxy_errors_total", "counter", "Connections or requests the L7 proxy ended early, by reason.");
  t.sample("pilus_proxy_errors_total", {{"reason", "timeout"}}, double(s.timeouts));
  t.sample("pilus_proxy_errors_total", {{"reason", "upstream"}}, double(s.upstream_errors));
  t.sample("pilus_proxy_errors_total", {{"reason", "unknown_origin"}}, double(s.unknown_origin));
  t.sample("pilus_proxy_errors_total", {{"reason", "too_many_connections"}}, double(s.rejected_connections));
  t.sample("pilus_proxy_errors_total", {{"reason", "client_abort"}}, double(s.client_aborts));
  t.sample("pilus_proxy_errors_total", {{"reason", "too_many_connections_per_identity"}}, double(s.identity_rejected));
  t.sample("pilus_proxy_errors_total", {{"reason", "descriptors_exhausted"}}, double(s.descriptors_exhausted));
  t.sample("pilus_proxy_errors_total", {{"reason", "invalid_target"}}, double(s.invalid_targets));
  t.sample("pilus_proxy_errors_total", {{"reason", "invalid_framing"}}, double(s.invalid_framing));
}

}  // namespace pilus::proxy
