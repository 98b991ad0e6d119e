// The embedded store: one SQLite database file in WAL mode; every transaction is one SQLite
// transaction, so a crash at any point leaves the store as it was before or after it.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "store/store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace pilus::store {

// Tables: kv (the current keys), history (every change of the last revisions,
// for watch), meta (revision, compacted revision), leases. Commits are durable when they return
// (synchronous=FULL: the WAL is fsynced once per transaction). Thread-safe.
class SqliteStore final : public Store {
 public:
  // Opens (creating with mode 0600) the database file at path; its directory must exist.
  // History is kept for the last `history_revisions` revisions (compacted every tenth of that).
  explicit SqliteStore(const std::string& path, int64_t history_revisions = 1000);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  using Store::get;
  std::optional<KeyValue> get(const std::string& key) const override;
  std::vector<KeyValue> range(const std::string& prefix) const override;
  TxnResult txn(const std::vector<Compare>& compares, const std::vector<Op>& ops) override;
  int64_t revision() const override;
  int64_t watch(const std::string& prefix, int64_t from_revision, WatchCallback callback) override;
  void cancel_watch(int64_t watch_id) override;
  int64_t grant_lease(int64_t ttl_seconds) override;
  void keep_alive(int64_t lease) override;
  void revoke_lease(int64_t lease) override;

  const std::string& path() const { return path_; }

 private:
  class Statement;
  struct Watcher {
    std::string prefix;
    WatchCallback callback;
    int64_t next_revision;  // events before this one were delivered already
  };

  sqlite3_stmt* statement(const char* sql) const;  // prepared once, cached; caller holds mutex_
  void exec(const char* sql) const;
  int64_t meta(const char* name) const;
  void set_meta(const char* name, int64_t value);
  // Applies ops at revision `rev` inside an open transaction; returns the events (none: no change).
  std::vector<Event> apply_ops(const std::vector<Op>& ops, int64_t rev);
  bool compacts_at(int64_t rev) const;
  std::vector<Event> history_since(int64_t from_revision) const;
  void notify(std::unique_lock<std::mutex>& store_lock, const std::vector<Event>& events);

  std::string path_;
  int64_t history_revisions_;
  sqlite3* db_ = nullptr;
  mutable std::map<const char*, sqlite3_stmt*> statements_;
  mutable std::mutex mutex_;
  int64_t revision_ = 0;
  int64_t compact_revision_ = 0;

  std::mutex watch_mutex_;  // taken while holding mutex_, so deliveries keep revision order
  std::map<int64_t, Watcher> watchers_;
  int64_t next_watch_id_ = 1;
};

}  // namespace pilus::store
