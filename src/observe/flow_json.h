// Flow <-> Hubble's flow JSON, and the newline-delimited stream the agent sends to clients.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

#include "observe/flow.h"

namespace pilus::observe {

// Hubble's field names (snake_case as its API, plus "IP", "Type", "Summary"). Empty fields are left
// out as protobuf JSON does, except source/destination "identity". Ports are in "l4"; the policy
// that decided goes to ingress_/egress_ allowed_by/denied_by as [{"name", "namespace"}].
nlohmann::json flow_to_json(const Flow& flow);
// The inverse; also accepts the wrapped form {"flow": {...}, ...}. Throws pilus::Error naming the
// field on malformed input.
Flow flow_from_json(const nlohmann::json& j);

// Where events were lost, with Hubble's names.
enum class LostEventSource : uint8_t {
  Unknown = 0,
  PerfEventRingBuffer = 1,  // the datapath's events ring was full (events_lost counter)
  ObserverEventsQueue = 2,
  HubbleRingBuffer = 3,  // a follower fell behind the agent's flow ring
};
std::string_view to_string(LostEventSource s);

struct LostEvents {
  LostEventSource source = LostEventSource::Unknown;
  uint64_t count = 0;
  TimePoint time{};
  std::string node_name;
  bool operator==(const LostEvents&) const = default;
};

// One line of the flow stream (no trailing newline):
//   {"flow": {...}, "node_name": "...", "time": "..."}
//   {"lost_events": {"source": "...", "num_events_lost": N}, "node_name": "...", "time": "..."}
std::string flow_json_line(const Flow& flow);
// The same line appended to out: the stream's hot path, no json tree when no string needs escaping.
void append_flow_json_line(std::string& out, const Flow& flow);
std::string lost_events_json_line(const LostEvents& lost);

using StreamItem = std::variant<Flow, LostEvents>;
// Parses one stream line (or a bare flow object). Throws pilus::Error on anything else.
StreamItem parse_stream_line(std::string_view line);

}  // namespace pilus::observe
