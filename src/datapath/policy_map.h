// The policy map's one writer. A new policy goes in in three steps so that no packet meets a
// half-written one: write() the new and changed entries beside the live ones, then (the caller)
// the endpoints' flags, then remove_except() the stale ones. Never flushed.
#pragma once

#include <cstddef>
#include <functional>

#include "datapath/datapath.h"

namespace pilus::datapath {

class PolicyMap {
 public:
  explicit PolicyMap(const Datapath& datapath) : map_(datapath.policy()), max_entries_(datapath.policy_max_entries()) {}

  size_t max_entries() const { return max_entries_; }
  void write(const policy_key& key, const policy_entry& entry) const { map_.update(key, entry); }
  // Removes every entry the map holds (an earlier agent's included) for which `keep` is false.
  void remove_except(const std::function<bool(const policy_key&)>& keep) const;

 private:
  PolicyBpfMap map_;
  size_t max_entries_;
};

}  // namespace pilus::datapath
