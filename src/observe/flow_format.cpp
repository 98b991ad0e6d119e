// Compact and table rendering of flows; the words follow Hubble's printer so users read it at a glance.
#include "observe/flow_format.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "abi/drop_reasons.h"
#include "common/error.h"
#include "observe/flow_time.h"

namespace pilus::observe {

OutputFormat parse_output_format(std::string_view text) {
  if (text == "compact") return OutputFormat::Compact;
  if (text == "json" || text == "jsonpb") return OutputFormat::Json;
  if (text == "table" || text == "tab") return OutputFormat::Table;
  fail("unknown output format '{}' (known: compact, json, jsonpb, table)", text);
}

std::string endpoint_text(const FlowEndpoint& ep) {
  std::string host;
  if (!ep.pod_name.empty()) {
    host = ep.namespace_name.empty() ? ep.pod_name : ep.namespace_name + "/" + ep.pod_name;
  } else {
    host = endpoint::to_string(ep.ip);
  }
  if (ep.port != 0) host += ":" + std::to_string(ep.port);
  return host;
}

std::string identity_text(uint32_t identity) {
  if (auto name = reserved_identity_name(identity)) return "(" + std::string(*name) + ")";
  return "(ID:" + std::to_string(identity) + ")";
}

std::string_view policy_match_type_name(uint8_t type) {
  static constexpr std::array<std::string_view, 7> kNames{"none", "L3-Only", "L3-L4", "L4-Only",
                                                          "all",  "L3-Proto", "Proto-Only"};
  return type < kNames.size() ? kNames[type] : "unknown";
}

std::string flow_type_text(const Flow& f) {
  if (f.http) {
    std::string type = f.http->l7_type;
    std::transform(type.begin(), type.end(), type.begin(), [](unsigned char c) { return std::tolower(c); });
    return "http-" + type;
  }
  switch (f.kind) {
    case EventKind::Trace: return std::string(to_string(f.trace_point));
    case EventKind::Drop: {
      if (f.policies.empty()) return drop_reason_text(f.drop_reason);
      // Name the cause, which Hubble cannot for a default deny.
      std::string text = f.drop_reason == DROP_POLICY_DENIED ? "Policy denied by default" : drop_reason_text(f.drop_reason);
      text += " (";
      for (size_t i = 0; i < f.policies.size(); ++i) text += (i ? ", " : "") + to_string(f.policies[i]);
      return text + ")";
    }
    case EventKind::PolicyVerdict:
      return "policy-verdict:" + std::string(policy_match_type_name(f.policy_match_type)) + " " +
             std::string(to_string(f.direction));
    case EventKind::L7: return "l7";
    default: return "UNKNOWN";
  }
}

std::string verdict_text(const Flow& f) {
  if (f.kind == EventKind::PolicyVerdict) {
    switch (f.verdict) {
      case Verdict::Forwarded:
      case Verdict::Redirected: return "ALLOWED";
      case Verdict::Dropped:
      case Verdict::Error: return "DENIED";
      case Verdict::Audit: return "AUDITED";
      default: break;
    }
  }
  return std::string(to_string(f.verdict));
}

std::string format_compact(const Flow& f, const FormatOptions& options) {
  std::string src = endpoint_text(f.source), dst = endpoint_text(f.destination);
  std::string src_id = identity_text(f.source.identity), dst_id = identity_text(f.destination.identity);
  std::string arrow = "->";
  if (!f.is_reply) {
    arrow = "<>";  // which side started the connection is not known
  } else if (*f.is_reply) {
    // A reply reads from the initiator's side: "client <- server".
    std::swap(src, dst);
    std::swap(src_id, dst_id);
    arrow = "<-";
  }
  std::string line = format_time(f.time, options.time_format, options.local_time);
  if (options.node_name) line += " [" + f.node_name + "]";
  line += ": " + src + " " + src_id + " " + arrow + " " + dst + " " + dst_id + " " + flow_type_text(f) + " " +
          verdict_text(f) + " (" + f.summary + ")";
  return line;
}

std::string format_compact(const LostEvents& lost, const FormatOptions& options) {
  std::string line = format_time(lost.time, options.time_format, options.local_time);
  if (options.node_name) line += " [" + lost.node_name + "]";
  return line + ": EVENTS LOST: " + std::string(to_string(lost.source)) + " " + std::to_string(lost.count);
}

std::string format_table(const std::vector<Flow>& flows, const FormatOptions& options) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header{"TIMESTAMP"};
  if (options.node_name) header.emplace_back("NODE");
  for (const char* h : {"SOURCE", "DESTINATION", "TYPE", "VERDICT", "SUMMARY"}) header.emplace_back(h);
  rows.push_back(std::move(header));
  for (const Flow& f : flows) {
    std::vector<std::string> row{format_time(f.time, options.time_format, options.local_time)};
    if (options.node_name) row.push_back(f.node_name);
    row.push_back(endpoint_text(f.source));
    row.push_back(endpoint_text(f.destination));
    row.push_back(flow_type_text(f));
    row.push_back(verdict_text(f));
    row.push_back(f.summary);
    rows.push_back(std::move(row));
  }
  std::vector<size_t> widths(rows.front().size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 3, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

}  // namespace pilus::observe
