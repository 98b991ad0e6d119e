// Hubble's flow metrics, counted from every flow the agent stores (datapath and proxy alike):
// hubble_flows_processed_total, hubble_drop_total, hubble_policy_verdicts_total.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "metrics/prometheus_text.h"
#include "observe/flow.h"

namespace pilus::observe {

class FlowMetrics {
 public:
  // Thread-safe; called once per stored flow.
  void observe(const Flow& flow);
  // Appends the three families (always present, possibly without samples).
  void render(metrics::PrometheusText& out) const;

 private:
  using Key3 = std::tuple<std::string, std::string, std::string>;
  mutable std::mutex mutex_;
  std::map<Key3, uint64_t> processed_;  // type, subtype, verdict
  std::map<std::pair<std::string, std::string>, uint64_t> drops_;  // reason, protocol
  std::map<Key3, uint64_t> policy_verdicts_;  // direction, match, action
};

}  // namespace pilus::observe
