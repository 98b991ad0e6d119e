// Human output for flows, as hubble observe prints them: compact lines and an aligned table.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "observe/flow.h"
#include "observe/flow_json.h"
#include "observe/flow_time.h"

namespace pilus::observe {

enum class OutputFormat { Compact, Json, Table };
// "compact", "json" (also "jsonpb"), "table" (also "tab"). Throws pilus::Error listing them otherwise.
OutputFormat parse_output_format(std::string_view text);

struct FormatOptions {
  bool local_time = false;  // Hubble prints UTC; set for the local zone
  bool node_name = false;   // add the node: " [node]" in compact, a NODE column in the table
  TimeFormat time_format = TimeFormat::StampMilli;  // hubble observe --time-format
};

// The parts of a line, usable on their own:
// "default/frontend:41234", "10.0.0.1" (no port for ICMP), "host".
std::string endpoint_text(const FlowEndpoint& ep);
// "(ID:1234)", or "(world)" for a reserved identity.
std::string identity_text(uint32_t identity);
// "to-endpoint" (trace), "Policy denied" (drop), "policy-verdict:none INGRESS", "http-request".
std::string flow_type_text(const Flow& flow);
// The verdict, with policy verdicts read as ALLOWED / DENIED / AUDITED.
std::string verdict_text(const Flow& flow);
// Hubble's PolicyMatchType names: "none", "L3-Only", "L3-L4", "L4-Only", "all", ...
std::string_view policy_match_type_name(uint8_t type);

// Nov 24 10:01:02.123: default/frontend:41234 (ID:1234) -> default/backend:80 (ID:5678) to-endpoint FORWARDED (TCP Flags: SYN)
// Drops (direction unknown) use "<>"; replies are printed from the initiator's side with "<-".
// No trailing newline.
std::string format_compact(const Flow& flow, const FormatOptions& options = {});
// Nov 24 10:01:02.123: EVENTS LOST: PERF_EVENT_RING_BUFFER 5
std::string format_compact(const LostEvents& lost, const FormatOptions& options = {});

// TIMESTAMP SOURCE DESTINATION TYPE VERDICT SUMMARY, columns padded to the widest cell plus three
// spaces; every line ends with '\n'. A header alone when flows is empty.
std::string format_table(const std::vector<Flow>& flows, const FormatOptions& options = {});

}  // namespace pilus::observe
