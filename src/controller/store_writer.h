// Where the controllers' writes to the store go: into the batch of the apply, delete or restore
// in progress (committed once, in one transaction), or straight to the store outside one.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "store/store.h"
#include "store/write_batch.h"

namespace pilus::controller {

class StoreWriter {
 public:
  explicit StoreWriter(store::Store& store) : store_(store) {}

  void put(const std::string& collection, const std::string& key, const nlohmann::json& value) {
    if (batch_)
      batch_->put(collection, key, value);
    else
      store_.put(collection, key, value);
  }
  void erase(const std::string& collection, const std::string& key) {
    if (batch_)
      batch_->erase(collection, key);
    else
      store_.erase(collection, key);
  }
  // Set for the length of one change (agent/batch_scope.h).
  store::WriteBatch*& batch_slot() { return batch_; }

 private:
  store::Store& store_;
  store::WriteBatch* batch_ = nullptr;
};

}  // namespace pilus::controller
