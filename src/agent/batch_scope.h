// Points the agent's "current write batch" at a local batch for one apply, delete or restore,
// and commits it on the way out of a failed delete.
#pragma once

#include <exception>

#include <spdlog/spdlog.h>

#include "store/store.h"
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

// For changes that are not all or nothing (delete): when an exception leaves the scope, what was
// staged so far is still committed, so the disk keeps matching what was removed from memory.
class CommitOnUnwind {
 public:
  CommitOnUnwind(store::Store& store, store::WriteBatch& batch)
      : store_(store), batch_(batch), exceptions_(std::uncaught_exceptions()) {}
  ~CommitOnUnwind() {
    if (std::uncaught_exceptions() <= exceptions_) return;
    try {
      store_.commit(batch_);
    } catch (const std::exception& e) {
      spdlog::error("saving what a failed change did: {}", e.what());
    }
  }
  CommitOnUnwind(const CommitOnUnwind&) = delete;
  CommitOnUnwind& operator=(const CommitOnUnwind&) = delete;

 private:
  store::Store& store_;
  store::WriteBatch& batch_;
  int exceptions_;
};

}  // namespace pilus::agent
