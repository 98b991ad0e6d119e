// SqliteStore: the etcd-shaped store on one SQLite database (see sqlite_store.h).
#include "store/sqlite_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "common/error.h"

namespace pilus::store {

namespace {

constexpr const char* kSchema = R"(
CREATE TABLE IF NOT EXISTS kv (
  key TEXT PRIMARY KEY, value TEXT NOT NULL, create_revision INTEGER NOT NULL,
  mod_revision INTEGER NOT NULL, version INTEGER NOT NULL, lease INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
  revision INTEGER NOT NULL, seq INTEGER NOT NULL, key TEXT NOT NULL, value TEXT,
  create_revision INTEGER NOT NULL, version INTEGER NOT NULL, lease INTEGER NOT NULL,
  PRIMARY KEY (revision, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (id INTEGER PRIMARY KEY, ttl INTEGER NOT NULL);
)";

// The smallest string above every string starting with prefix; nullopt when there is none.
std::optional<std::string> prefix_end(std::string prefix) {
  while (!prefix.empty()) {
    auto last = static_cast<unsigned char>(prefix.back());
    if (last < 0xFF) {
      prefix.back() = static_cast<char>(last + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::nullopt;
}

nlohmann::json parse_value(const std::string& key, const unsigned char* text, int size) {
  try {
    return nlohmann::json::parse(reinterpret_cast<const char*>(text), reinterpret_cast<const char*>(text) + size);
  } catch (const nlohmann::json::parse_error& e) {
    fail("store: the value of {} is corrupt (not valid JSON): {}", key, e.what());
  }
}

std::string column_text(sqlite3_stmt* s, int column) {
  const unsigned char* text = sqlite3_column_text(s, column);
  return text ? std::string(reinterpret_cast<const char*>(text), sqlite3_column_bytes(s, column)) : std::string();
}

}  // namespace

// A cached statement in use: bindings and the cursor are reset when it goes out of scope.
class SqliteStore::Statement {
 public:
  Statement(const SqliteStore& store, const char* sql) : store_(store), s_(store.statement(sql)) {}
  ~Statement() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, const std::string& text) {
    check(sqlite3_bind_text(s_, i, text.data(), static_cast<int>(text.size()), SQLITE_STATIC));
    return *this;
  }
  Statement& bind(int i, int64_t value) {
    check(sqlite3_bind_int64(s_, i, value));
    return *this;
  }
  Statement& bind_null(int i) {
    check(sqlite3_bind_null(s_, i));
    return *this;
  }
  // True while there is a row.
  bool step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail("store {}: {} (in \"{}\")", store_.path_, sqlite3_errmsg(store_.db_), sqlite3_sql(s_));
  }
  void run() {
    while (step()) {
    }
  }
  sqlite3_stmt* get() const { return s_; }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) fail("store {}: cannot bind: {}", store_.path_, sqlite3_errmsg(store_.db_));
  }
  const SqliteStore& store_;
  sqlite3_stmt* s_;
};

SqliteStore::SqliteStore(const std::string& path, int64_t history_revisions)
    : path_(path), history_revisions_(std::max<int64_t>(history_revisions, 10)) {
  // Created here with 0600 so the database (and the WAL SQLite gives the same mode) stay private.
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) throw system_error("store: cannot open " + path, errno);
  ::close(fd);
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    fail("store: cannot open {}: {}", path, message);
  }
  try {
    sqlite3_busy_timeout(db_, 10000);
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=FULL");
    exec(kSchema);
    revision_ = meta("revision");
    compact_revision_ = meta("compact_revision");
  } catch (...) {
    sqlite3_close(db_);
    throw;
  }
}

SqliteStore::~SqliteStore() {
  for (auto& [sql, s] : statements_) sqlite3_finalize(s);
  sqlite3_close(db_);
}

sqlite3_stmt* SqliteStore::statement(const char* sql) const {
  auto it = statements_.find(sql);
  if (it != statements_.end()) return it->second;
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK)
    fail("store {}: cannot prepare \"{}\": {}", path_, sql, sqlite3_errmsg(db_));
  statements_.emplace(sql, s);
  return s;
}

void SqliteStore::exec(const char* sql) const {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error ? error : sqlite3_errmsg(db_);
    sqlite3_free(error);
    fail("store {}: {} (in \"{}\")", path_, message, sql);
  }
}

int64_t SqliteStore::meta(const char* name) const {
  Statement s(*this, "SELECT value FROM meta WHERE name = ?1");
  s.bind(1, std::string(name));
  return s.step() ? sqlite3_column_int64(s.get(), 0) : 0;
}

void SqliteStore::set_meta(const char* name, int64_t value) {
  Statement s(*this, "INSERT INTO meta(name, value) VALUES(?1, ?2) ON CONFLICT(name) DO UPDATE SET value = excluded.value");
  s.bind(1, std::string(name)).bind(2, value).run();
}

std::optional<KeyValue> SqliteStore::get(const std::string& key) const {
  std::lock_guard lock(mutex_);
  Statement s(*this, "SELECT value, create_revision, mod_revision, version, lease FROM kv WHERE key = ?1");
  s.bind(1, key);
  if (!s.step()) return std::nullopt;
  sqlite3_stmt* r = s.get();
  return KeyValue{key, parse_value(key, sqlite3_column_text(r, 0), sqlite3_column_bytes(r, 0)),
                  sqlite3_column_int64(r, 1), sqlite3_column_int64(r, 2), sqlite3_column_int64(r, 3),
                  sqlite3_column_int64(r, 4)};
}

std::vector<KeyValue> SqliteStore::range(const std::string& prefix) const {
  std::lock_guard lock(mutex_);
  auto end = prefix_end(prefix);
  Statement s(*this, end ? "SELECT key, value, create_revision, mod_revision, version, lease FROM kv "
                           "WHERE key >= ?1 AND key < ?2 ORDER BY key"
                         : "SELECT key, value, create_revision, mod_revision, version, lease FROM kv "
                           "WHERE key >= ?1 ORDER BY key");
  s.bind(1, prefix);
  if (end) s.bind(2, *end);
  std::vector<KeyValue> out;
  while (s.step()) {
    sqlite3_stmt* r = s.get();
    std::string key = column_text(r, 0);
    nlohmann::json value = parse_value(key, sqlite3_column_text(r, 1), sqlite3_column_bytes(r, 1));
    out.push_back(KeyValue{std::move(key), std::move(value), sqlite3_column_int64(r, 2), sqlite3_column_int64(r, 3),
                           sqlite3_column_int64(r, 4), sqlite3_column_int64(r, 5)});
  }
  return out;
}

int64_t SqliteStore::revision() const {
  std::lock_guard lock(mutex_);
  return revision_;
}

// History older than the last history_revisions_ revisions is compacted (as etcd does) every
// tenth of that many revisions.
bool SqliteStore::compacts_at(int64_t rev) const {
  return rev > history_revisions_ && rev % (history_revisions_ / 10) == 0;
}

std::vector<Event> SqliteStore::apply_ops(const std::vector<Op>& ops, int64_t rev) {
  bool watched;  // parsing values back is only worth it for a watcher
  {
    std::lock_guard watch_lock(watch_mutex_);
    watched = !watchers_.empty();
  }
  std::vector<Event> events;
  int64_t seq = 0;
  for (const auto& op : ops) {
    if (op.key.empty()) fail("store: empty key");
    Event e;
    e.kv.key = op.key;
    e.kv.mod_revision = rev;
    if (op.text) {
      if (op.lease != 0) {
        Statement l(*this, "SELECT 1 FROM leases WHERE id = ?1");
        if (!l.bind(1, op.lease).step()) fail("store: put {}: lease {} does not exist", op.key, op.lease);
      }
      Statement s(*this,
                  "INSERT INTO kv(key, value, create_revision, mod_revision, version, lease) VALUES(?1, ?2, ?3, ?3, 1, ?4) "
                  "ON CONFLICT(key) DO UPDATE SET value = excluded.value, mod_revision = excluded.mod_revision, "
                  "version = version + 1, lease = excluded.lease RETURNING create_revision, version");
      s.bind(1, op.key).bind(2, *op.text).bind(3, rev).bind(4, op.lease);
      if (!s.step()) fail("store: put {} returned nothing", op.key);
      e.type = Event::Type::Put;
      e.kv.create_revision = sqlite3_column_int64(s.get(), 0);
      e.kv.version = sqlite3_column_int64(s.get(), 1);
      e.kv.lease = op.lease;
      s.run();
    } else {
      Statement s(*this, "DELETE FROM kv WHERE key = ?1");
      s.bind(1, op.key).run();
      if (sqlite3_changes(db_) == 0) continue;
      e.type = Event::Type::Delete;
    }
    Statement h(*this,
                "INSERT INTO history(revision, seq, key, value, create_revision, version, lease) "
                "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    h.bind(1, rev).bind(2, seq++).bind(3, op.key);
    if (op.text)
      h.bind(4, *op.text);
    else
      h.bind_null(4);
    h.bind(5, e.kv.create_revision).bind(6, e.kv.version).bind(7, e.kv.lease).run();
    if (op.text && watched) e.kv.value = nlohmann::json::parse(*op.text);
    events.push_back(std::move(e));
  }
  return events;
}

TxnResult SqliteStore::txn(const std::vector<Compare>& compares, const std::vector<Op>& ops) {
  std::unique_lock lock(mutex_);
  exec("BEGIN IMMEDIATE");
  std::vector<Event> events;
  try {
    for (const auto& c : compares) {
      Statement s(*this, "SELECT mod_revision FROM kv WHERE key = ?1");
      s.bind(1, c.key);
      int64_t mod = s.step() ? sqlite3_column_int64(s.get(), 0) : 0;
      if (mod != c.mod_revision) {
        exec("ROLLBACK");
        return TxnResult{false, revision_};
      }
    }
    const int64_t rev = revision_ + 1;
    events = apply_ops(ops, rev);
    if (!events.empty()) {
      set_meta("revision", rev);
      if (compacts_at(rev)) {
        Statement s(*this, "DELETE FROM history WHERE revision <= ?1");
        s.bind(1, rev - history_revisions_).run();
        set_meta("compact_revision", rev - history_revisions_);
      }
    }
    exec("COMMIT");
    if (!events.empty()) {
      revision_ = rev;
      if (compacts_at(rev)) compact_revision_ = rev - history_revisions_;
    }
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  TxnResult result{true, revision_};
  if (!events.empty()) notify(lock, events);
  return result;
}

void SqliteStore::notify(std::unique_lock<std::mutex>& store_lock, const std::vector<Event>& events) {
  std::lock_guard watch_lock(watch_mutex_);
  store_lock.unlock();
  for (auto& [id, w] : watchers_) {
    std::vector<Event> mine;
    for (const auto& e : events)
      if (e.kv.mod_revision >= w.next_revision && e.kv.key.starts_with(w.prefix)) mine.push_back(e);
    if (!events.empty()) w.next_revision = events.back().kv.mod_revision + 1;
    if (!mine.empty()) w.callback(mine);
  }
}

std::vector<Event> SqliteStore::history_since(int64_t from_revision) const {
  Statement s(*this,
              "SELECT revision, key, value, create_revision, version, lease FROM history WHERE revision >= ?1 "
              "ORDER BY revision, seq");
  s.bind(1, from_revision);
  std::vector<Event> events;
  while (s.step()) {
    sqlite3_stmt* r = s.get();
    Event e;
    e.kv.mod_revision = sqlite3_column_int64(r, 0);
    e.kv.key = column_text(r, 1);
    e.type = sqlite3_column_type(r, 2) == SQLITE_NULL ? Event::Type::Delete : Event::Type::Put;
    if (e.type == Event::Type::Put) e.kv.value = parse_value(e.kv.key, sqlite3_column_text(r, 2), sqlite3_column_bytes(r, 2));
    e.kv.create_revision = sqlite3_column_int64(r, 3);
    e.kv.version = sqlite3_column_int64(r, 4);
    e.kv.lease = sqlite3_column_int64(r, 5);
    events.push_back(std::move(e));
  }
  return events;
}

int64_t SqliteStore::watch(const std::string& prefix, int64_t from_revision, WatchCallback callback) {
  std::unique_lock lock(mutex_);
  if (from_revision != 0 && from_revision <= compact_revision_)
    fail("store: cannot watch from revision {}: history before revision {} was compacted", from_revision,
         compact_revision_ + 1);
  std::vector<Event> past;
  if (from_revision != 0 && from_revision <= revision_)
    for (auto& e : history_since(from_revision))
      if (e.kv.key.starts_with(prefix)) past.push_back(std::move(e));
  std::lock_guard watch_lock(watch_mutex_);
  int64_t id = next_watch_id_++;
  auto& w = watchers_[id] = Watcher{prefix, std::move(callback), revision_ + 1};
  lock.unlock();
  if (!past.empty()) w.callback(past);
  return id;
}

void SqliteStore::cancel_watch(int64_t watch_id) {
  std::lock_guard watch_lock(watch_mutex_);
  watchers_.erase(watch_id);
}

int64_t SqliteStore::grant_lease(int64_t ttl_seconds) {
  if (ttl_seconds <= 0) fail("store: a lease needs a positive TTL, not {}", ttl_seconds);
  std::lock_guard lock(mutex_);
  Statement s(*this, "INSERT INTO leases(ttl) VALUES(?1) RETURNING id");
  s.bind(1, ttl_seconds);
  if (!s.step()) fail("store: granting a lease returned nothing");
  int64_t id = sqlite3_column_int64(s.get(), 0);
  s.run();
  return id;
}

void SqliteStore::keep_alive(int64_t lease) {
  std::lock_guard lock(mutex_);
  Statement s(*this, "SELECT 1 FROM leases WHERE id = ?1");
  if (!s.bind(1, lease).step()) fail("store: lease {} does not exist", lease);
}

void SqliteStore::revoke_lease(int64_t lease) {
  std::vector<Op> ops;
  {
    std::lock_guard lock(mutex_);
    Statement s(*this, "SELECT key FROM kv WHERE lease = ?1");
    s.bind(1, lease);
    while (s.step()) ops.push_back(delete_op(column_text(s.get(), 0)));
  }
  // The keys go in one revision; a key put with the lease meanwhile goes the next time.
  txn({}, ops);
  std::lock_guard lock(mutex_);
  Statement s(*this, "DELETE FROM leases WHERE id = ?1");
  s.bind(1, lease).run();
}

}  // namespace pilus::store
