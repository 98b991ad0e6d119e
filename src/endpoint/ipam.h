// Pod address allocation from the node's pod CIDR (host-scope IPAM, like Cilium's cluster-pool per node).
#pragma once

#include <cstddef>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "endpoint/ipv4.h"

namespace pilus::endpoint {

// Layout of a pod CIDR such as 10.244.0.0/24:
//   10.244.0.0    network, never used
//   10.244.0.1    router_ip(): the node's address on the pod side, pods' default gateway
//   10.244.0.2 .. 10.244.0.254   pods, lowest free first
//   10.244.0.255  broadcast, never used
// Allocations live in memory only: on restart the agent hands back each restored pod's address
// with allocate_specific() before it allocates new ones. Thread-safe.
class Ipam {
 public:
  // Throws pilus::Error on text that is not an IPv4 CIDR, on host bits set, and on a prefix
  // shorter than /8 or longer than /28.
  explicit Ipam(const std::string& cidr);

  Ipam(const Ipam&) = delete;
  Ipam& operator=(const Ipam&) = delete;

  Ipv4 router_ip() const { return Ipv4{prefix_.network().value + 1}; }
  // The lowest free pod address; throws pilus::Error when every pod address is in use.
  Ipv4 allocate();
  // Claims one address (restore); throws when it is not a pod address of the CIDR or is taken.
  void allocate_specific(Ipv4 ip);
  // Throws when ip is not allocated, since a double release hides two pods sharing an address.
  void release(Ipv4 ip);

  size_t available() const;
  // Pod addresses in total (router, network and broadcast excluded).
  size_t capacity() const { return static_cast<size_t>(last_pod().value - first_pod().value + 1); }
  // Whether ip is inside the pod CIDR at all (router, network and broadcast included).
  bool contains(Ipv4 ip) const { return prefix_.contains(ip); }
  bool is_allocated(Ipv4 ip) const;
  std::vector<Ipv4> allocated() const;  // ascending
  std::string cidr() const { return to_string(prefix_); }

 private:
  Ipv4 first_pod() const { return Ipv4{prefix_.network().value + 2}; }
  Ipv4 last_pod() const { return Ipv4{prefix_.broadcast().value - 1}; }

  Ipv4Prefix prefix_;
  mutable std::mutex mutex_;
  std::set<Ipv4> allocated_;
  // Every pod address below next_candidate_ is allocated, so allocate() scans from here.
  Ipv4 next_candidate_;
};

}  // namespace pilus::endpoint
