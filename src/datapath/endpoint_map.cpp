#include "datapath/endpoint_map.h"

#include <cstring>

namespace pilus::datapath {

void EndpointMap::put(const EndpointEntry& e) const {
  endpoint_info info{};
  info.ifindex = static_cast<uint32_t>(e.ifindex);
  info.identity = e.identity;
  info.endpoint_id = e.endpoint_id;
  info.flags = e.flags;
  std::memcpy(info.host_mac, e.host_mac.data(), 6);
  std::memcpy(info.pod_mac, e.pod_mac.data(), 6);
  map_.update(endpoint_key{e.ip.network_order()}, info);
}

void EndpointMap::erase(endpoint::Ipv4 ip) const { map_.erase(endpoint_key{ip.network_order()}); }

std::optional<uint16_t> EndpointMap::flags(endpoint::Ipv4 ip) const {
  if (auto v = map_.lookup(endpoint_key{ip.network_order()})) return v->flags;
  return std::nullopt;
}

void EndpointMap::remove_except(const std::set<endpoint::Ipv4>& live) const {
  for (const auto& k : map_.keys())
    if (!live.count(endpoint::Ipv4::from_network_order(k.ip4))) map_.erase(k);
}

}  // namespace pilus::datapath
