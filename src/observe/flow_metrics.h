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
  // Counted by the flow's numbers (no strings built per flow: this runs for every event the
  // agent decodes); render() turns them into the label values.
  using Key3 = std::tuple<uint8_t, uint8_t, uint8_t>;
  mutable std::mutex mutex_;
  std::map<Key3, uint64_t> processed_;  // kind, subtype (trace point; 1 for HTTP), verdict
  std::map<std::pair<uint8_t, uint8_t>, uint64_t> drops_;  // reason, L4 protocol
  std::map<Key3, uint64_t> policy_verdicts_;  // direction, match type, verdict
};

}  // namespace pilus::observe
