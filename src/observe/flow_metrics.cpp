// Label values follow Hubble's metric handlers: type is the event kind ("Trace", "Drop",
// "PolicyVerdict", "L7"), subtype the observation point or L7 protocol, and policy verdicts
// use lower-case direction, match and action.
#include "observe/flow_metrics.h"

#include <algorithm>
#include <cctype>

#include "datapath/drop_reason_names.h"
#include "observe/flow_format.h"

namespace pilus::observe {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string type_label(EventKind kind) {
  switch (kind) {
    case EventKind::Drop: return "Drop";
    case EventKind::Trace: return "Trace";
    case EventKind::PolicyVerdict: return "PolicyVerdict";
    case EventKind::L7: return "L7";
    default: return "Unknown";
  }
}

uint8_t subtype_code(const Flow& f) {
  if (f.kind == EventKind::Trace) return static_cast<uint8_t>(f.trace_point);
  if (f.kind == EventKind::L7) return f.http ? 1 : 0;
  return 0;
}

std::string subtype_label(EventKind kind, uint8_t code) {
  if (kind == EventKind::Trace) return std::string(to_string(static_cast<TracePoint>(code)));
  if (kind == EventKind::L7) return code ? "HTTP" : "";
  return "";
}

std::string protocol_label(L4Protocol protocol) {
  switch (protocol) {
    case L4Protocol::Tcp: return "TCP";
    case L4Protocol::Udp: return "UDP";
    case L4Protocol::Icmpv4: return "ICMPv4";
    default: return "";
  }
}

uint8_t u8(auto e) { return static_cast<uint8_t>(e); }

}  // namespace

void FlowMetrics::observe(const Flow& f) {
  std::lock_guard lock(mutex_);
  processed_[{u8(f.kind), subtype_code(f), u8(f.verdict)}]++;
  if (f.verdict == Verdict::Dropped && f.kind != EventKind::PolicyVerdict) drops_[{f.drop_reason, u8(f.l4.protocol)}]++;
  if (f.kind == EventKind::PolicyVerdict) policy_verdicts_[{u8(f.direction), f.policy_match_type, u8(f.verdict)}]++;
}

void FlowMetrics::render(metrics::PrometheusText& t) const {
  // Label values, summed: several numbers may share a name (unknown kinds, for one).
  using Labels3 = std::tuple<std::string, std::string, std::string>;
  std::map<Labels3, uint64_t> processed, policy_verdicts;
  std::map<std::pair<std::string, std::string>, uint64_t> drops;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [k, n] : processed_) {
      auto kind = static_cast<EventKind>(std::get<0>(k));
      processed[{type_label(kind), subtype_label(kind, std::get<1>(k)),
                 std::string(to_string(static_cast<Verdict>(std::get<2>(k))))}] += n;
    }
    for (const auto& [k, n] : drops_)
      drops[{datapath::drop_reason_name(k.first), protocol_label(static_cast<L4Protocol>(k.second))}] += n;
    for (const auto& [k, n] : policy_verdicts_)
      policy_verdicts[{lower(to_string(static_cast<TrafficDirection>(std::get<0>(k)))),
                       lower(policy_match_type_name(std::get<1>(k))),
                       lower(to_string(static_cast<Verdict>(std::get<2>(k))))}] += n;
  }
  t.family("hubble_flows_processed_total", "counter", "Total number of flows processed, by type, subtype and verdict.");
  for (const auto& [k, n] : processed)
    t.sample("hubble_flows_processed_total",
             {{"type", std::get<0>(k)}, {"subtype", std::get<1>(k)}, {"verdict", std::get<2>(k)}}, double(n));
  t.family("hubble_drop_total", "counter", "Number of drops, by drop reason and protocol.");
  for (const auto& [k, n] : drops)
    t.sample("hubble_drop_total", {{"reason", k.first}, {"protocol", k.second}}, double(n));
  t.family("hubble_policy_verdicts_total", "counter",
           "Number of policy verdicts on new connections, by direction, match type and action.");
  for (const auto& [k, n] : policy_verdicts)
    t.sample("hubble_policy_verdicts_total",
             {{"direction", std::get<0>(k)}, {"match", std::get<1>(k)}, {"action", std::get<2>(k)}}, double(n));
}

}  // namespace pilus::observe
