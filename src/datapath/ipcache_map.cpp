#include "datapath/ipcache_map.h"

#include "abi/identity.h"

namespace pilus::datapath {

namespace {

ipcache_key host_key(endpoint::Ipv4 ip) { return ipcache_key{32, ip.network_order()}; }

}  // namespace

void IpcacheMap::put_pod(endpoint::Ipv4 ip, uint32_t identity) const {
  map_.update(host_key(ip), ipcache_value{identity, IPCACHE_F_LOCAL_POD});
}

void IpcacheMap::erase_pod(endpoint::Ipv4 ip) const { map_.erase(host_key(ip)); }

void IpcacheMap::remove_pods_except(const std::set<endpoint::Ipv4>& live) const {
  for (const auto& k : map_.keys()) {
    auto v = map_.lookup(k);
    if (v && (v->flags & IPCACHE_F_LOCAL_POD) && !live.count(endpoint::Ipv4::from_network_order(k.ip4)))
      map_.erase(k);
  }
}

void IpcacheMap::sync_host(const std::set<endpoint::Ipv4>& host_ips) const {
  for (endpoint::Ipv4 ip : host_ips) map_.update(host_key(ip), ipcache_value{IDENTITY_HOST, IPCACHE_F_HOST});
  for (const auto& k : map_.keys()) {
    auto v = map_.lookup(k);
    if (v && (v->flags & IPCACHE_F_HOST) && !host_ips.count(endpoint::Ipv4::from_network_order(k.ip4))) map_.erase(k);
  }
}

}  // namespace pilus::datapath
