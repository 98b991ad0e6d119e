// The endpoints map's one writer: what the datapath knows of each local pod (its veth, identity,
// endpoint id, default-deny flags, MACs), keyed by its address. Rewritten in place, never flushed.
#pragma once

#include <cstdint>
#include <optional>
#include <set>

#include "datapath/datapath.h"
#include "datapath/host_network.h"
#include "endpoint/ipv4.h"

namespace pilus::datapath {

struct EndpointEntry {
  endpoint::Ipv4 ip;
  int ifindex = 0;  // host side of the veth
  uint32_t identity = 0;
  uint16_t endpoint_id = 0;
  uint16_t flags = 0;  // ENDPOINT_F_*
  Mac host_mac{}, pod_mac{};
};

class EndpointMap {
 public:
  explicit EndpointMap(const Datapath& datapath) : map_(datapath.endpoints()) {}

  void put(const EndpointEntry& entry) const;
  void erase(endpoint::Ipv4 ip) const;
  // The flags the map holds for the address (a pinned entry an earlier agent wrote), if any.
  std::optional<uint16_t> flags(endpoint::Ipv4 ip) const;
  // Removes the entries of addresses not in `live` (leftovers of an earlier agent).
  void remove_except(const std::set<endpoint::Ipv4>& live) const;

 private:
  EndpointsBpfMap map_;
};

}  // namespace pilus::datapath
