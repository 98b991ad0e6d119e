#include "datapath/conntrack_map.h"

#include <time.h>

namespace pilus::datapath {

size_t ConntrackMap::remove_expired(uint32_t now) const {
  size_t deleted = 0;
  for (const auto& k : map_.keys()) {
    auto v = map_.lookup(k);
    if (v && v->expires <= now && map_.erase(k)) deleted++;
  }
  return deleted;
}

size_t ConntrackMap::gc() const {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return remove_expired(static_cast<uint32_t>(ts.tv_sec));
}

}  // namespace pilus::datapath
