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

std::string type_label(const Flow& f) {
  switch (f.kind) {
    case EventKind::Drop: return "Drop";
    case EventKind::Trace: return "Trace";
    case EventKind::PolicyVerdict: return "PolicyVerdict";
    case EventKind::L7: return "L7";
    default: return "Unknown";
  }
}

std::string subtype_label(const Flow& f) {
  if (f.kind == EventKind::Trace) return std::string(to_string(f.trace_point));
  if (f.kind == EventKind::L7) return f.http ? "HTTP" : "";
  return "";
}

std::string protocol_label(const Flow& f) {
  switch (f.l4.protocol) {
    case L4Protocol::Tcp: return "TCP";
    case L4Protocol::Udp: return "UDP";
    case L4Protocol::Icmpv4: return "ICMPv4";
    default: return "";
  }
}

}  // namespace

void FlowMetrics::observe(const Flow& f) {
  std::lock_guard lock(mutex_);
  processed_[{type_label(f), subtype_label(f), std::string(to_string(f.verdict))}]++;
  if (f.verdict == Verdict::Dropped && f.kind != EventKind::PolicyVerdict)
    drops_[{datapath::drop_reason_name(f.drop_reason), protocol_label(f)}]++;
  if (f.kind == EventKind::PolicyVerdict)
    policy_verdicts_[{lower(to_string(f.direction)), lower(policy_match_type_name(f.policy_match_type)),
                      lower(to_string(f.verdict))}]++;
}

void FlowMetrics::render(metrics::PrometheusText& t) const {
  std::lock_guard lock(mutex_);
  t.family("hubble_flows_processed_total", "counter", "Total number of flows processed, by type, subtype and verdict.");
  for (const auto& [k, n] : processed_)
    t.sample("hubble_flows_processed_total",
             {{"type", std::get<0>(k)}, {"subtype", std::get<1>(k)}, {"verdict", std::get<2>(k)}}, double(n));
  t.family("hubble_drop_total", "counter", "Number of drops, by drop reason and protocol.");
  for (const auto& [k, n] : drops_)
    t.sample("hubble_drop_total", {{"reason", k.first}, {"protocol", k.second}}, double(n));
  t.family("hubble_policy_verdicts_total", "counter",
           "Number of policy verdicts on new connections, by direction, match type and action.");
  for (const auto& [k, n] : policy_verdicts_)
    t.sample("hubble_policy_verdicts_total",
             {{"direction", std::get<0>(k)}, {"match", std::get<1>(k)}, {"action", std::get<2>(k)}}, double(n));
}

}  // namespace pilus::observe
