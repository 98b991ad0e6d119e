// A set of document changes staged in memory and made durable together by FileStore::commit,
// with one round of syncs instead of one per document.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace pilus::store {

// Names and encodings are checked when a change is staged, so a bad key fails before anything
// is written. A later change to the same document replaces the earlier one (last one wins);
// changes are made on disk in the order they were first staged.
class WriteBatch {
 public:
  void put(const std::string& collection, const std::string& key, const nlohmann::json& value);
  void erase(const std::string& collection, const std::string& key);

  bool empty() const { return changes_.empty(); }
  size_t size() const { return changes_.size(); }
  // Forgets every staged change; nothing of them reaches the disk.
  void clear();

 private:
  friend class FileStore;
  struct Change {
    std::string collection;
    std::string key;
    std::string file_name;            // key_file_name(key)
    std::optional<std::string> text;  // the document as written; nullopt = erase
  };
  void stage(const std::string& collection, const std::string& key, std::optional<std::string> text);

  std::vector<Change> changes_;
  std::map<std::pair<std::string, std::string>, size_t> index_;  // (collection, key) -> changes_ slot
};

}  // namespace pilus::store
