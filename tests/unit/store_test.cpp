// SqliteStore behind the Store interface: collections, transactions with compare on mod
// revision, revisions, watch, leases, reopening, and all or nothing across a SIGKILL.
#include "store/sqlite_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/error.h"
#include "store/state_dir.h"
#include "unit/error_of.h"
#include "unit/store_dir_fixture.h"

namespace pilus::store {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;
using pilus::testing::error_of;

class StoreTest : public pilus::testing::StoreDirTest {
 protected:
  std::unique_ptr<Store> open() { return open_state_store(dir_.string()); }
};

TEST_F(StoreTest, StateDirAndDatabaseArePrivate) {
  auto store = open();
  struct stat st {};
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((dir_ / "store.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(has_state(dir_.string()));
  EXPECT_FALSE(has_state((root_ / "other").string()));
}

TEST_F(StoreTest, PutGetEraseList) {
  auto store = open();
  json pod = {{"name", "frontend"}, {"labels", {{"app", "web"}}}};
  store->put("pods", "default/frontend", pod);
  store->put("pods", "app/b", 2);
  store->put("pods", "app/a", 1);
  store->put("podsx", "app/c", 3);  // a collection whose name extends another's is not in its list
  EXPECT_EQ(store->get("pods", "default/frontend"), pod);
  EXPECT_EQ(store->get("pods", "missing"), std::nullopt);
  auto items = store->list("pods");
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0], (std::pair<std::string, json>{"app/a", 1}));
  EXPECT_EQ(items[2].first, "default/frontend");
  EXPECT_TRUE(store->erase("pods", "app/a"));
  EXPECT_FALSE(store->erase("pods", "app/a"));
  EXPECT_EQ(store->list("pods").size(), 2u);
  EXPECT_TRUE(store->list("empty").empty());
}

struct Endpoint {
  std::string name;
  int port = 0;
};
void to_json(json& j, const Endpoint& e) { j = {{"name", e.name}, {"port", e.port}}; }
void from_json(const json& j, Endpoint& e) {
  e.name = j.at("name").get<std::string>();
  e.port = j.at("port").get<int>();
}

TEST_F(StoreTest, ATypedCollectionStoresItsTypeUnderItsPrefix) {
  auto store = open();
  Collection<Endpoint> endpoints(*store, "endpoints");
  WriteBatch batch;
  endpoints.put(batch, "default/web", Endpoint{"web", 80});
  endpoints.put(batch, "default/db", Endpoint{"db", 5432});
  store->commit(batch);
  EXPECT_EQ(endpoints.get("default/web")->port, 80);
  EXPECT_EQ(endpoints.get("missing"), std::nullopt);
  auto all = endpoints.list();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].first, "default/db");
  EXPECT_EQ(all[0].second.name, "db");
  EXPECT_EQ(store->get("/endpoints/default/web")->value, (json{{"name", "web"}, {"port", 80}})) << "etcd-style key";
  endpoints.erase(batch, "default/db");
  store->commit(batch);
  EXPECT_EQ(endpoints.list().size(), 1u);
}

TEST_F(StoreTest, KeysWithAnyCharacterRoundTrip) {
  auto store = open();
  const std::vector<std::string> keys = {"default/frontend", "10.0.0.0/8", ".", "..", "with space", "ünïcode",
                                         std::string(1000, 'k'), "a\xff"};
  for (size_t i = 0; i < keys.size(); ++i) store->put("things", keys[i], i);
  for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(store->get("things", keys[i]), json(i)) << keys[i];
  EXPECT_EQ(store->list("things").size(), keys.size());
}

TEST_F(StoreTest, RejectsNamesItCannotStore) {
  auto store = open();
  EXPECT_THAT(error_of([&] { store->put("pods", "", 1); }), HasSubstr("empty key"));
  EXPECT_THAT(error_of([&] { store->put("../escape", "a", 1); }), HasSubstr("collection"));
  EXPECT_THAT(error_of([&] { store->get("Pods/x", "a"); }), HasSubstr("collection"));
  WriteBatch batch;
  EXPECT_THAT(error_of([&] { batch.put("pods", "a", json("\xff")); }), HasSubstr("encode"));
  EXPECT_TRUE(batch.empty());
}

TEST_F(StoreTest, EveryTransactionTakesTheNextRevision) {
  auto store = open();
  EXPECT_EQ(store->revision(), 0);
  store->put("pods", "a", 1);
  EXPECT_EQ(store->revision(), 1);
  WriteBatch batch;
  batch.put("pods", "a", 2);
  batch.put("pods", "b", 1);
  batch.erase("pods", "never");
  store->commit(batch);
  EXPECT_EQ(store->revision(), 2) << "one batch, one revision";
  auto a = store->get("/pods/a");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->create_revision, 1);
  EXPECT_EQ(a->mod_revision, 2);
  EXPECT_EQ(a->version, 2);
  EXPECT_EQ(store->get("/pods/b")->create_revision, 2);
  store->erase("pods", "never");
  EXPECT_EQ(store->revision(), 2) << "deleting a missing key changes nothing";
}

TEST_F(StoreTest, CompareOnModRevisionGuardsTheWholeTransaction) {
  auto store = open();
  store->put("pods", "a", 1);
  int64_t rev = store->get("/pods/a")->mod_revision;
  // Stale compare: nothing of the transaction is made.
  auto failed = store->txn({Compare{"/pods/a", rev + 7}}, {put_op("/pods/a", 2), put_op("/pods/b", 2)});
  EXPECT_FALSE(failed.succeeded);
  EXPECT_EQ(store->get("pods", "a"), json(1));
  EXPECT_EQ(store->get("pods", "b"), std::nullopt);
  // Create-if-absent (mod_revision 0) and swap on the current revision.
  EXPECT_FALSE(store->txn({Compare{"/pods/a", 0}}, {put_op("/pods/a", 3)}).succeeded);
  EXPECT_TRUE(store->txn({Compare{"/pods/c", 0}}, {put_op("/pods/c", 3)}).succeeded);
  auto ok = store->txn({Compare{"/pods/a", rev}}, {put_op("/pods/a", 4), delete_op("/pods/c")});
  EXPECT_TRUE(ok.succeeded);
  EXPECT_EQ(ok.revision, store->revision());
  EXPECT_EQ(store->get("pods", "a"), json(4));
  EXPECT_EQ(store->get("pods", "c"), std::nullopt);
}

TEST_F(StoreTest, ALaterChangeInABatchWinsAndClearForgetsAll) {
  auto store = open();
  WriteBatch batch;
  batch.put("pods", "a", 1);
  batch.erase("pods", "a");
  batch.put("pods", "a", 3);
  batch.put("pods", "b", 1);
  EXPECT_EQ(batch.size(), 2u);
  WriteBatch abandoned;
  abandoned.put("pods", "z", 1);
  abandoned.clear();
  store->commit(abandoned);
  store->commit(batch);
  EXPECT_TRUE(batch.empty());
  EXPECT_EQ(store->get("pods", "a"), json(3));
  EXPECT_EQ(store->get("pods", "z"), std::nullopt);
}

TEST_F(StoreTest, ReopenSeesTheDataAndTheRevision) {
  {
    auto store = open();
    store->put("pods", "default/frontend", {{"ip", "10.244.0.2"}});
    store->put("identities", "256", {{"labels", {"k8s:app=web"}}});
    store->erase("identities", "256");
  }
  auto store = open();
  EXPECT_EQ(store->get("pods", "default/frontend"), (json{{"ip", "10.244.0.2"}}));
  EXPECT_TRUE(store->list("identities").empty());
  EXPECT_EQ(store->revision(), 3);
}

TEST_F(StoreTest, WatchGivesHistoryThenLiveEventsUnderItsPrefix) {
  auto store = open();
  store->put("pods", "a", 1);     // rev 1
  store->put("services", "s", 1); // rev 2
  store->put("pods", "b", 1);     // rev 3
  std::vector<std::pair<int64_t, std::string>> seen;
  int64_t id = store->watch("/pods/", 2, [&](const std::vector<Event>& events) {
    for (const auto& e : events)
      seen.emplace_back(e.kv.mod_revision, (e.type == Event::Type::Put ? "put " : "delete ") + e.kv.key);
  });
  EXPECT_EQ(seen, (std::vector<std::pair<int64_t, std::string>>{{3, "put /pods/b"}}));
  store->erase("pods", "a");  // rev 4
  store->put("services", "t", 1);
  WriteBatch batch;
  batch.put("pods", "c", 7);
  batch.put("pods", "d", 8);
  store->commit(batch);  // rev 6
  EXPECT_EQ(seen, (std::vector<std::pair<int64_t, std::string>>{
                      {3, "put /pods/b"}, {4, "delete /pods/a"}, {6, "put /pods/c"}, {6, "put /pods/d"}}));
  store->cancel_watch(id);
  store->put("pods", "e", 1);
  EXPECT_EQ(seen.size(), 4u);
  // Values come with the events.
  json value;
  store->watch("/pods/", 0, [&](const std::vector<Event>& events) { value = events.at(0).kv.value; });
  store->put("pods", "f", {{"x", 1}});
  EXPECT_EQ(value, (json{{"x", 1}}));
}

TEST_F(StoreTest, WatchFromACompactedRevisionIsAnError) {
  fs::create_directories(dir_);
  auto store = std::make_unique<SqliteStore>((dir_ / "store.db").string(), /*history_revisions=*/50);
  for (int64_t i = 0; i < 120; ++i) store->put("ticks", "t", i);
  EXPECT_THAT(error_of([&] { store->watch("/", 1, [](const std::vector<Event>&) {}); }), HasSubstr("compacted"));
  int delivered = 0;
  store->watch("/", store->revision() - 10, [&](const std::vector<Event>& events) { delivered += events.size(); });
  EXPECT_EQ(delivered, 11);
}

TEST_F(StoreTest, RevokingALeaseDeletesItsKeys) {
  auto store = open();
  int64_t lease = store->grant_lease(30);
  store->keep_alive(lease);
  store->txn({}, {put_op("/nodes/a", 1, lease), put_op("/nodes/b", 2)});
  EXPECT_EQ(store->get("/nodes/a")->lease, lease);
  store->revoke_lease(lease);
  EXPECT_EQ(store->get("nodes", "a"), std::nullopt);
  EXPECT_EQ(store->get("nodes", "b"), json(2));
  EXPECT_THAT(error_of([&] { store->keep_alive(lease); }), HasSubstr("does not exist"));
  EXPECT_THAT(error_of([&] { store->txn({}, {put_op("/nodes/c", 1, lease)}); }), HasSubstr("lease"));
  EXPECT_EQ(store->get("nodes", "c"), std::nullopt);
}

TEST_F(StoreTest, ConcurrentWritersKeepEveryDocument) {
  auto store = open();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&store, t] {
      for (int i = 0; i < 20; ++i) {
        store->put("pods", "ns/pod-" + std::to_string(t) + "-" + std::to_string(i), i);
        store->put("shared", "same", {{"writer", t}, {"i", i}});
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(store->list("pods").size(), 80u);
  EXPECT_EQ((*store->get("shared", "same"))["i"], 19);
  EXPECT_EQ(store->revision(), 160);
}

// A child commits batches of 2000 documents, each batch marking its number in every document,
// and is SIGKILLed at some point; the reopened store holds whole batches only.
TEST_F(StoreTest, ASigkilledWriterLeavesWholeTransactionsOnly) {
  { open(); }
  for (int delay_ms : {30, 120, 400}) {
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      auto store = open_state_store(dir_.string());
      for (int round = 1;; ++round) {
        WriteBatch batch;
        for (int i = 0; i < 2000; ++i) batch.put("docs", "d" + std::to_string(i), {{"round", round}});
        batch.put("meta", "round", round);
        store->commit(batch);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    ::kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    auto store = open();
    auto docs = store->list("docs");
    auto round = store->get("meta", "round");
    if (!round) {
      EXPECT_TRUE(docs.empty());
      continue;
    }
    ASSERT_EQ(docs.size(), 2000u) << "after " << delay_ms << " ms";
    for (const auto& [key, doc] : docs) ASSERT_EQ(doc["round"], *round) << key << " after " << delay_ms << " ms";
  }
}

// ---- the old layout: one JSON file per key ----

void write_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

TEST_F(StoreTest, OldFileNamesDecodeAsTheOldStoreEncodedThem) {
  EXPECT_EQ(key_file_name("default/frontend"), "default%2Ffrontend.json");
  EXPECT_EQ(key_of_file_name("default%2Ffrontend.json"), "default/frontend");
  EXPECT_EQ(key_of_file_name("%2E..json"), "..");
  EXPECT_EQ(key_of_file_name("default%2ffrontend.json"), std::nullopt);
  EXPECT_EQ(key_of_file_name("README"), std::nullopt);
}

TEST_F(StoreTest, AStateDirOfTheOldLayoutIsMigratedOnOpen) {
  write_file(dir_ / "config" / "agent.json", R"({"pod_cidr": "10.244.7.0/24"})");
  write_file(dir_ / "pods" / "default%2Fweb.json", "{\n  \"manifest\": {\"kind\": \"Pod\"},\n  \"endpoint\": {}\n}\n");
  write_file(dir_ / "pods" / ".tmp-42-1", "{\"half");
  write_file(dir_ / "cidr-identities" / "all.json", R"({"identities": {"16777216": ["cidr:10.0.0.0/8"]}})");
  write_file(dir_ / "logs" / "default_web.log", "pod output\n");
  {
    auto store = open();
    EXPECT_EQ(store->get("config", "agent"), (json{{"pod_cidr", "10.244.7.0/24"}}));
    EXPECT_EQ(store->get("pods", "default/web"), (json{{"manifest", {{"kind", "Pod"}}}, {"endpoint", json::object()}}));
    EXPECT_EQ(store->list("cidr-identities").size(), 1u);
    EXPECT_EQ(store->revision(), 1) << "one transaction";
    store->put("pods", "default/web", 2);  // a change after the migration
  }
  EXPECT_FALSE(fs::exists(dir_ / "pods")) << "imported files and their empty directories go";
  EXPECT_FALSE(fs::exists(dir_ / "config"));
  EXPECT_TRUE(fs::exists(dir_ / "logs" / "default_web.log")) << "what is not a document stays";
  // Files a crash left after the import are removed, never imported again over newer data.
  write_file(dir_ / "pods" / "default%2Fweb.json", "{}");
  auto store = open();
  EXPECT_EQ(store->get("pods", "default/web"), json(2));
  EXPECT_FALSE(fs::exists(dir_ / "pods"));
}

TEST_F(StoreTest, ACorruptOldFileFailsTheMigrationNamingIt) {
  write_file(dir_ / "pods" / "a.json", "{}");
  write_file(dir_ / "pods" / "default%2Fbad.json", "{\"truncated\": ");
  EXPECT_THAT(error_of([&] { open(); }), HasSubstr((dir_ / "pods" / "default%2Fbad.json").string()));
  EXPECT_TRUE(fs::exists(dir_ / "pods" / "a.json")) << "nothing imported, nothing removed";
}

}  // namespace
}  // namespace pilus::store
