#include "datapath/policy_map.h"

namespace pilus::datapath {

void PolicyMap::remove_except(const std::function<bool(const policy_key&)>& keep) const {
  for (const auto& k : map_.keys())
    if (!keep(k)) map_.erase(k);
}

}  // namespace pilus::datapath
