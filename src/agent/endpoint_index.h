// A thread-safe index of the node's endpoints by address, and of identity
// labels, for the flow decoder: it runs on the event thread and must not
// wait for the agent's main lock (held during long applies).
#pragma once

#include <map>
#include <shared_mutex>
#include <string>
#include <vector>

#include "observe/flow_decoder.h"
#include "policy/policy_ref.h"

namespace pilus::agent {

class EndpointIndex : public observe::EndpointResolver {
 public:
  void put(uint32_t ip_host_order, observe::EndpointInfo info, std::vector<std::string> labels);
  void erase(uint32_t ip_host_order);

  std::optional<observe::EndpointInfo> by_ip(uint32_t ip_host_order) const override;
  std::vector<std::string> labels_of(uint32_t identity) const override;
  std::vector<observe::FlowPolicy> policies_of(uint32_t policy_ref) const override;

  // The references the policy map's entries carry. Interning only grows a cache and the
  // table locks itself, so const users (policy trace) may intern too.
  policy::PolicyRefTable& policy_refs() const { return policy_refs_; }

 private:
  mutable policy::PolicyRefTable policy_refs_;
  mutable std::shared_mutex mutex_;
  std::map<uint32_t, observe::EndpointInfo> by_ip_;
  std::map<uint32_t, std::vector<std::string>> labels_;  // by identity
};

}  // namespace pilus::agent
