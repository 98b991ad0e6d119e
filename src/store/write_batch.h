// A set of document changes staged in memory and made in one store transaction by Store::commit.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace pilus::store {

struct Op;

// Names and encodings are checked when a change is staged, so a bad key fails before anything
// is written. A later change to the same document replaces the earlier one (last one wins).
class WriteBatch {
 public:
  void put(const std::string& collection, const std::string& key, const nlohmann::json& value);
  void erase(const std::string& collection, const std::string& key);

  bool empty() const { return ops_.empty(); }
  size_t size() const { return ops_.size(); }
  // Forgets every staged change; nothing of them reaches the store.
  void clear();
  // The staged changes as transaction ops, in the order first staged.
  const std::vector<Op>& ops() const { return ops_; }
  // Moves the staged changes out, leaving the batch empty.
  std::vector<Op> take();

 private:
  void stage(Op op);

  std::vector<Op> ops_;
  std::map<std::string, size_t> index_;  // store key -> ops_ slot
};

}  // namespace pilus::store
