// The ipcache's one writer: which identity each address has, for the local pods and the node's
// own addresses. Entries are written in place, never flushed: new and changed ones first, stale
// ones removed one by one afterwards, so a live address never loses its identity.
#pragma once

#include <cstdint>
#include <set>

#include "datapath/datapath.h"
#include "endpoint/ipv4.h"

namespace pilus::datapath {

class IpcacheMap {
 public:
  explicit IpcacheMap(const Datapath& datapath) : map_(datapath.ipcache()) {}

  void put_pod(endpoint::Ipv4 ip, uint32_t identity) const;
  void erase_pod(endpoint::Ipv4 ip) const;
  // Removes the local-pod entries of addresses not in `live` (leftovers of an earlier agent).
  void remove_pods_except(const std::set<endpoint::Ipv4>& live) const;
  // Makes the host entries exactly `host_ips`: new ones written first, then stale ones removed.
  void sync_host(const std::set<endpoint::Ipv4>& host_ips) const;

 private:
  IpcacheBpfMap map_;
};

}  // namespace pilus::datapath
