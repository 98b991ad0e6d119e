#include "datapath/policy_cidr_map.h"

namespace pilus::datapath {

namespace {

ipcache_key key_of(const endpoint::Ipv4Prefix& p) {
  return ipcache_key{static_cast<uint32_t>(p.length), p.network().network_order()};
}

}  // namespace

void PolicyCidrMap::add(const Prefixes& written, const Prefixes& wanted) const {
  if (wanted.size() > written.size()) count_.update(0, static_cast<uint32_t>(wanted.size()));
  for (const auto& [prefix, id] : wanted) map_.update(key_of(prefix), ipcache_value{id, 0});
}

void PolicyCidrMap::remove_gone(const Prefixes& written, const Prefixes& wanted) const {
  for (const auto& [prefix, id] : written)
    if (!wanted.count(prefix)) map_.erase(key_of(prefix));
  count_.update(0, static_cast<uint32_t>(wanted.size()));
}

}  // namespace pilus::datapath
