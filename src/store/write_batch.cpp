// WriteBatch: staging only; Store::commit (store.cpp) makes it one transaction.
#include "store/write_batch.h"

#include "store/store.h"

namespace pilus::store {

void WriteBatch::put(const std::string& collection, const std::string& key, const nlohmann::json& value) {
  Op op = put_op(collection_key(collection, key), value);
  op.text->shrink_to_fit();  // staged by the thousand: no spare capacity each
  stage(std::move(op));
}

void WriteBatch::erase(const std::string& collection, const std::string& key) {
  stage(delete_op(collection_key(collection, key)));
}

void WriteBatch::stage(Op op) {
  auto [it, added] = index_.emplace(op.key, ops_.size());
  if (!added) {
    ops_[it->second] = std::move(op);
    return;
  }
  ops_.push_back(std::move(op));
}

std::vector<Op> WriteBatch::take() {
  std::vector<Op> ops = std::move(ops_);
  clear();
  return ops;
}

void WriteBatch::clear() {
  ops_.clear();
  index_.clear();
}

}  // namespace pilus::store
