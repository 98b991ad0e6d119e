// Ipam: lowest-free allocation of pod addresses inside the node's pod CIDR.
#include "endpoint/ipam.h"

#include "common/error.h"

namespace pilus::endpoint {

namespace {

Ipv4Prefix parse_pod_cidr(const std::string& cidr) {
  Ipv4Prefix prefix;
  try {
    prefix = parse_ipv4_prefix(cidr);
  } catch (const Error& e) {
    fail("invalid pod CIDR: {}", e.what());
  }
  if (prefix.has_host_bits())
    fail("invalid pod CIDR {}: host bits are set (did you mean {}?)", cidr,
         to_string(prefix.masked()));
  if (prefix.length < 8)
    fail("invalid pod CIDR {}: /{} is too large, the prefix must be /8 to /28", cidr,
         prefix.length);
  if (prefix.length > 28)
    fail("invalid pod CIDR {}: /{} leaves too few pod addresses, the prefix must be /8 to /28", cidr,
         prefix.length);
  return prefix;
}

}  // namespace

Ipam::Ipam(const std::string& cidr) : prefix_(parse_pod_cidr(cidr)), next_candidate_(first_pod()) {}

Ipv4 Ipam::allocate() {
  std::lock_guard lock(mutex_);
  Ipv4 candidate = next_candidate_;
  for (auto it = allocated_.lower_bound(candidate); it != allocated_.end() && *it == candidate; ++it)
    ++candidate.value;
  if (candidate > last_pod())
    fail("pod CIDR {} is exhausted: all {} addresses are in use", cidr(), capacity());
  allocated_.insert(candidate);
  next_candidate_ = Ipv4{candidate.value + 1};
  return candidate;
}

void Ipam::allocate_specific(Ipv4 ip) {
  std::lock_guard lock(mutex_);
  if (!prefix_.contains(ip)) fail("{} is not in pod CIDR {}", to_string(ip), cidr());
  if (ip == prefix_.network())
    fail("{} is the network address of pod CIDR {}", to_string(ip), cidr());
  if (ip == prefix_.broadcast())
    fail("{} is the broadcast address of pod CIDR {}", to_string(ip), cidr());
  if (ip == router_ip())
    fail("{} is the router address of pod CIDR {}, reserved for the node", to_string(ip), cidr());
  if (!allocated_.insert(ip).second)
    fail("{} is already allocated in pod CIDR {}", to_string(ip), cidr());
}

void Ipam::release(Ipv4 ip) {
  std::lock_guard lock(mutex_);
  if (allocated_.erase(ip) == 0)
    fail("cannot release {}: it is not allocated in pod CIDR {}", to_string(ip), cidr());
  if (ip < next_candidate_) next_candidate_ = ip;
}

size_t Ipam::available() const {
  std::lock_guard lock(mutex_);
  return capacity() - allocated_.size();
}

bool Ipam::is_allocated(Ipv4 ip) const {
  std::lock_guard lock(mutex_);
  return allocated_.count(ip) > 0;
}

std::vector<Ipv4> Ipam::allocated() const {
  std::lock_guard lock(mutex_);
  return {allocated_.begin(), allocated_.end()};
}

}  // namespace pilus::endpoint
