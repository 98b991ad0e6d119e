// The conntrack map's one user-space writer: the datapath makes and refreshes entries, the
// agent only deletes the expired ones (garbage collection).
#pragma once

#include <cstddef>
#include <cstdint>

#include "datapath/datapath.h"

namespace pilus::datapath {

class ConntrackMap {
 public:
  explicit ConntrackMap(const Datapath& datapath) : map_(datapath.conntrack()) {}

  // Deletes the entries expired at `now` (monotonic seconds, the datapath's clock); returns how many.
  size_t remove_expired(uint32_t now) const;
  // remove_expired at the current monotonic time.
  size_t gc() const;

 private:
  ConntrackBpfMap map_;
};

}  // namespace pilus::datapath
