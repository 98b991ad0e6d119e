// Turns the datapath's flow_event records into Flows, naming pods through the agent's resolver.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "observe/flow.h"

namespace pilus::observe {

struct EndpointInfo {
  std::string namespace_name;
  std::string pod_name;
  uint32_t identity = 0;
  uint16_t endpoint_id = 0;  // optional: shown as Hubble's endpoint "ID"
};

// Implemented by the agent. Called from the event reader's thread, so it must be thread-safe.
class EndpointResolver {
 public:
  virtual ~EndpointResolver() = default;
  // The local pod that owns this address, if any.
  virtual std::optional<EndpointInfo> by_ip(uint32_t ip_host_order) const = 0;
  // The identity's labels in Cilium's string form ("k8s:app=frontend"); empty when unknown.
  virtual std::vector<std::string> labels_of(uint32_t identity) const = 0;
  // What a datapath policy reference (flow_event.policy_ref) names; empty when unknown.
  virtual std::vector<FlowPolicy> policies_of(uint32_t /*policy_ref*/) const { return {}; }
};

class FlowDecoder {
 public:
  FlowDecoder(const EndpointResolver& resolver, std::string node_name);

  // Decodes one ring-buffer record. A record shorter than struct flow_event, or of an unknown event
  // type, is counted in decode_errors() and gives nullopt; longer records are accepted (a newer
  // datapath may append fields). Never throws on bad input.
  std::optional<Flow> decode(const void* data, size_t size);

  uint64_t decoded() const { return decoded_.load(std::memory_order_relaxed); }
  uint64_t decode_errors() const { return errors_.load(std::memory_order_relaxed); }

  // The datapath stamps CLOCK_MONOTONIC; flows carry wall-clock time. By default the offset is read
  // from both clocks at each decode (so a wall-clock step applies at once); tests pin it here.
  void set_wall_minus_monotonic(std::function<std::chrono::nanoseconds()> offset) { offset_ = std::move(offset); }

 private:
  FlowEndpoint resolve(uint32_t addr_be, uint16_t port_be, bool has_ports, uint32_t identity) const;

  const EndpointResolver& resolver_;
  std::string node_name_;
  std::function<std::chrono::nanoseconds()> offset_;
  std::atomic<uint64_t> decoded_{0};
  std::atomic<uint64_t> errors_{0};
};

// The wall-clock minus monotonic offset right now.
std::chrono::nanoseconds wall_minus_monotonic_now();

}  // namespace pilus::observe
