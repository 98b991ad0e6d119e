// Points the agent's "current write batch" at a local batch for one apply, delete or restore.
#pragma once

#include "store/write_batch.h"

namespace pilus::agent {

class BatchScope {
 public:
  BatchScope(store::WriteBatch*& slot, store::WriteBatch& batch) : slot_(slot) { slot_ = &batch; }
  ~BatchScope() { slot_ = nullptr; }
  BatchScope(const BatchScope&) = delete;
  BatchScope& operator=(const BatchScope&) = delete;

 private:
  store::WriteBatch*& slot_;
};

}  // namespace pilus::agent
