// GET /v1/policy/trace: the verdict for a packet, step by step (`cilium policy trace`).
#pragma once

#include "api/v1/schema.h"

namespace pilus::api::v1 {

struct TraceStep {
  std::string endpoint;   // the pod deciding, or the address no route leads to
  std::string direction;  // ingress, egress; "" for the routing step
  std::string verdict;    // ALLOWED, DENIED
  std::string reason;     // the drop reason, "" when allowed
  std::string decided_by;
};

void fields(auto& f, Is<TraceStep> auto& s) {
  f("endpoint", s.endpoint);
  f("direction", s.direction, Presence::kOmitEmpty);
  f("verdict", s.verdict);
  f("reason", s.reason);
  f("decidedBy", s.decided_by);
}

struct PolicyTrace {
  std::string from;
  std::uint32_t from_identity = 0;
  std::string to;
  std::uint32_t to_identity = 0;
  std::uint16_t port = 0;
  std::string protocol;
  std::string verdict;
  std::vector<TraceStep> steps;
};

void fields(auto& f, Is<PolicyTrace> auto& t) {
  f("from", t.from);
  f("fromIdentity", t.from_identity);
  f("to", t.to);
  f("toIdentity", t.to_identity);
  f("port", t.port);
  f("protocol", t.protocol);
  f("verdict", t.verdict);
  f("steps", t.steps);
}

}  // namespace pilus::api::v1
