// The policy_cidrs map's one writer (with its count): the CIDRs policies name, each with the
// CIDR identity a peer address inside it gets. The datapath searches the trie only while the
// count is not 0, so the count is raised before prefixes are added and set after they are removed.
#pragma once

#include <cstdint>
#include <map>

#include "datapath/datapath.h"
#include "endpoint/ipv4.h"

namespace pilus::datapath {

class PolicyCidrMap {
 public:
  explicit PolicyCidrMap(const Datapath& datapath)
      : map_(datapath.policy_cidrs()), count_(datapath.policy_cidrs_count()) {}

  using Prefixes = std::map<endpoint::Ipv4Prefix, uint32_t>;  // prefix -> CIDR identity
  // From `written` (what the map holds) to `wanted`, in two steps: add() writes new and changed
  // prefixes; remove_gone() erases the ones no policy names any more. The caller removes only
  // once the new policy entries are in place: an old prefix may be what lets a live connection through.
  void add(const Prefixes& written, const Prefixes& wanted) const;
  void remove_gone(const Prefixes& written, const Prefixes& wanted) const;

 private:
  IpcacheBpfMap map_;
  PolicyCidrsCountMap count_;
};

}  // namespace pilus::datapath
