// Store: ops and the collection layer on top of the etcd-shaped interface.
#include "store/store.h"

#include "common/error.h"

namespace pilus::store {

void check_collection_name(const std::string& collection) {
  if (collection.empty() || collection.size() > 64 || collection.front() == '-')
    fail("store: invalid collection name \"{}\"", collection);
  for (unsigned char c : collection) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      fail("store: invalid collection name \"{}\" (allowed: a-z 0-9 _ -)", collection);
  }
}

std::string collection_prefix(const std::string& collection) {
  check_collection_name(collection);
  return "/" + collection + "/";
}

std::string collection_key(const std::string& collection, const std::string& key) {
  if (key.empty()) fail("store: empty key in collection {}", collection);
  return collection_prefix(collection) + key;
}

Op put_op(const std::string& key, const nlohmann::json& value, int64_t lease) {
  try {
    return Op{key, value.dump(), lease};
  } catch (const nlohmann::json::exception& e) {
    fail("store: cannot encode {}: {}", key, e.what());
  }
}

Op delete_op(const std::string& key) { return Op{key, std::nullopt, 0}; }

void Store::put(const std::string& collection, const std::string& key, const nlohmann::json& value) {
  txn({}, {put_op(collection_key(collection, key), value)});
}

std::optional<nlohmann::json> Store::get(const std::string& collection, const std::string& key) const {
  auto kv = get(collection_key(collection, key));
  if (!kv) return std::nullopt;
  return std::move(kv->value);
}

bool Store::erase(const std::string& collection, const std::string& key) {
  std::string k = collection_key(collection, key);
  // Compare on "exists": the delete happens only when the key was there, so the answer is exact.
  for (;;) {
    auto kv = get(k);
    if (!kv) return false;
    if (txn({Compare{k, kv->mod_revision}}, {delete_op(k)}).succeeded) return true;
  }
}

std::vector<std::pair<std::string, nlohmann::json>> Store::list(const std::string& collection) const {
  std::string prefix = collection_prefix(collection);
  std::vector<std::pair<std::string, nlohmann::json>> out;
  for (auto& kv : range(prefix)) out.emplace_back(kv.key.substr(prefix.size()), std::move(kv.value));
  return out;
}

void Store::commit(WriteBatch& batch) {
  if (batch.empty()) return;
  txn({}, batch.take());
}

}  // namespace pilus::store
