// The agent's desired state: a key-value store of JSON documents shaped like etcd v3, so that a
// cluster can later put etcd behind the same interface. The embedded default is SqliteStore.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/write_batch.h"

namespace pilus::store {

// As etcd reports a key: revisions are the store's global revision at the transaction that
// created / last changed the key; version counts changes since creation.
struct KeyValue {
  std::string key;
  nlohmann::json value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;  // 0: none
};

// A transaction's guard, as etcd's Compare on MOD revision: holds when the key's mod_revision
// equals `mod_revision`; 0 means "the key does not exist".
struct Compare {
  std::string key;
  int64_t mod_revision = 0;
};

// A change in a transaction: a put (value set) or a delete (value nullopt). `text` is the
// document as stored (compact JSON, checked when the op is made: see put_op).
struct Op {
  std::string key;
  std::optional<std::string> text;
  int64_t lease = 0;
};
Op put_op(const std::string& key, const nlohmann::json& value, int64_t lease = 0);
Op delete_op(const std::string& key);

struct TxnResult {
  bool succeeded = false;  // every compare held and the ops were made
  int64_t revision = 0;    // the store's revision after the transaction
};

// One change seen by a watcher; for a delete, kv holds the key and the revision of the delete.
struct Event {
  enum class Type { Put, Delete };
  Type type = Type::Put;
  KeyValue kv;
};

using WatchCallback = std::function<void(const std::vector<Event>&)>;

class Store {
 public:
  virtual ~Store() = default;

  // ---- etcd-shaped interface ----
  virtual std::optional<KeyValue> get(const std::string& key) const = 0;
  // Every key starting with prefix, sorted by key (bytewise).
  virtual std::vector<KeyValue> range(const std::string& prefix) const = 0;
  // All or nothing, durable when it returns: if every compare holds, makes every op in one
  // transaction that takes the next revision (ops that change nothing still count, as in etcd;
  // a transaction without ops takes none). Deleting a missing key is no change.
  virtual TxnResult txn(const std::vector<Compare>& compares, const std::vector<Op>& ops) = 0;
  // The revision of the last transaction that changed something (0: none yet).
  virtual int64_t revision() const = 0;
  // Calls `callback` with the events under prefix from `from_revision` on (0: only future ones):
  // first the stored history, then after each transaction, in revision order. Throws when
  // from_revision is older than the history kept (compacted, as etcd says). Returns an id for
  // cancel_watch. Callbacks run on the writer's thread after its commit and must not write.
  virtual int64_t watch(const std::string& prefix, int64_t from_revision, WatchCallback callback) = 0;
  virtual void cancel_watch(int64_t watch_id) = 0;
  // Leases, as etcd's: keys put with a lease go when it is revoked (or expires). The embedded
  // store has one holder (the agent itself), so its leases never expire: only revoke ends them.
  virtual int64_t grant_lease(int64_t ttl_seconds) = 0;
  virtual void keep_alive(int64_t lease) = 0;  // throws for a lease that does not exist
  virtual void revoke_lease(int64_t lease) = 0;

  // ---- collections: "/<collection>/<key>", the layout an etcd prefix per kind gives ----
  // Collections are fixed names chosen by the code ([a-z0-9_-], not starting with '-'); keys are
  // any non-empty text. Single writes are one transaction each.
  void put(const std::string& collection, const std::string& key, const nlohmann::json& value);
  std::optional<nlohmann::json> get(const std::string& collection, const std::string& key) const;
  bool erase(const std::string& collection, const std::string& key);  // true when the key existed
  // Every document of the collection, sorted by key.
  std::vector<std::pair<std::string, nlohmann::json>> list(const std::string& collection) const;
  // Makes every change of the batch in one transaction and empties the batch, even when it throws.
  void commit(WriteBatch& batch);
};

// "/<collection>/<key>"; throws pilus::Error for a name or key the store refuses.
std::string collection_key(const std::string& collection, const std::string& key);
std::string collection_prefix(const std::string& collection);
void check_collection_name(const std::string& collection);

// A collection of T (with nlohmann to_json / from_json) in a store.
template <typename T>
class Collection {
 public:
  Collection(Store& store, std::string name) : store_(store), name_(std::move(name)) {}
  void put(WriteBatch& batch, const std::string& key, const T& value) const { batch.put(name_, key, value); }
  void erase(WriteBatch& batch, const std::string& key) const { batch.erase(name_, key); }
  std::optional<T> get(const std::string& key) const {
    auto j = store_.get(name_, key);
    if (!j) return std::nullopt;
    return j->template get<T>();
  }
  std::vector<std::pair<std::string, T>> list() const {
    std::vector<std::pair<std::string, T>> out;
    for (auto& [key, j] : store_.list(name_)) out.emplace_back(key, j.template get<T>());
    return out;
  }
  const std::string& name() const { return name_; }

 private:
  Store& store_;
  std::string name_;
};

}  // namespace pilus::store
