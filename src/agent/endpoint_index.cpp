#include "agent/endpoint_index.h"

#include <mutex>

namespace pilus::agent {

void EndpointIndex::put(uint32_t ip, observe::EndpointInfo info, std::vector<std::string> labels) {
  std::unique_lock lock(mutex_);
  labels_[info.identity] = std::move(labels);
  by_ip_[ip] = std::move(info);
}

void EndpointIndex::erase(uint32_t ip) {
  std::unique_lock lock(mutex_);
  by_ip_.erase(ip);
}

std::optional<observe::EndpointInfo> EndpointIndex::by_ip(uint32_t ip) const {
  std::shared_lock lock(mutex_);
  auto it = by_ip_.find(ip);
  if (it == by_ip_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> EndpointIndex::labels_of(uint32_t identity) const {
  std::shared_lock lock(mutex_);
  auto it = labels_.find(identity);
  return it == labels_.end() ? std::vector<std::string>{} : it->second;
}

std::vector<observe::FlowPolicy> EndpointIndex::policies_of(uint32_t policy_ref) const {
  std::vector<observe::FlowPolicy> out;
  for (const auto& r : policy_refs_.lookup(policy_ref)) out.push_back({r.kind, r.ns, r.name, r.rule_index, r.path});
  return out;
}

}  // namespace pilus::agent
