// WriteBatch: staging only; FileStore::commit (file_store.cpp) does the writing.
#include "store/write_batch.h"

#include "common/error.h"
#include "store/file_store.h"

namespace pilus::store {

void WriteBatch::put(const std::string& collection, const std::string& key, const nlohmann::json& value) {
  std::string text;
  try {
    text = encode_document(value);
    text.shrink_to_fit();  // staged by the thousand: no spare capacity each
  } catch (const nlohmann::json::exception& e) {
    fail("store: cannot encode {}/{}: {}", collection, key, e.what());
  }
  stage(collection, key, std::move(text));
}

void WriteBatch::erase(const std::string& collection, const std::string& key) { stage(collection, key, std::nullopt); }

void WriteBatch::stage(const std::string& collection, const std::string& key, std::optional<std::string> text) {
  check_collection_name(collection);
  std::string file_name = key_file_name(key);
  auto [it, added] = index_.emplace(std::make_pair(collection, key), changes_.size());
  if (!added) {
    changes_[it->second].text = std::move(text);
    return;
  }
  changes_.push_back(Change{collection, key, std::move(file_name), std::move(text)});
}

void WriteBatch::clear() {
  changes_.clear();
  index_.clear();
}

}  // namespace pilus::store
