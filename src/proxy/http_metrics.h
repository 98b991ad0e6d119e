// Prometheus counters of the L7 proxy, with Hubble's HTTP metric names
// (requests by method, responses by status, a latency histogram, labelled by
// reporter: "server" for ingress policy, "client" for egress) and Cilium's
// cilium_policy_l7_total{rule} for verdicts.
#pragma once

#include <array>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "metrics/prometheus_text.h"
#include "proxy/http_proxy.h"

namespace pilus::proxy {

class HttpMetrics {
 public:
  // Latency buckets, in seconds (Hubble's defaults).
  static constexpr std::array<double, 11> kBuckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

  void observe(const HttpExchange& x, bool response);
  // Appends the HTTP families; `stats` gives the proxy's own counters.
  void render(metrics::PrometheusText& out, const ProxyStats& stats) const;

 private:
  struct Histogram {
    std::array<uint64_t, kBuckets.size()> buckets{};
    uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, std::string>, uint64_t> requests_;  // method, protocol, reporter
  std::map<std::tuple<std::string, std::string, std::string, std::string>, uint64_t> responses_;  // method, status, verdict, reporter
  std::map<std::pair<std::string, std::string>, Histogram> latency_;  // method, reporter
};

}  // namespace pilus::proxy
