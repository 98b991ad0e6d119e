// FileStore::commit of a WriteBatch: all staged changes visible after commit, none before or
// after clear(), failures before and after the first rename, crash leftovers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "store/file_store.h"
#include "store/write_batch.h"
#include "unit/error_of.h"
#include "unit/store_dir_fixture.h"

namespace pilus::store {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

using pilus::testing::error_of;
using pilus::testing::files_in;

class WriteBatchTest : public pilus::testing::StoreDirTest {};

TEST_F(WriteBatchTest, CommitMakesEveryChangeVisible) {
  FileStore store(dir_.string());
  store.put("services", "default/old", 1);
  store.put("services", "default/kept", 2);
  WriteBatch batch;
  batch.put("services", "default/new", {{"vip", "10.96.0.10"}});
  batch.put("policies", "CiliumNetworkPolicy/default/p", {{"spec", json::object()}});
  batch.erase("services", "default/old");
  batch.erase("services", "never/existed");
  batch.erase("never-written", "x");
  EXPECT_EQ(batch.size(), 5u);
  store.commit(batch);

  EXPECT_TRUE(batch.empty());
  EXPECT_EQ(store.get("services", "default/new"), (json{{"vip", "10.96.0.10"}}));
  EXPECT_EQ(store.get("policies", "CiliumNetworkPolicy/default/p"), (json{{"spec", json::object()}}));
  EXPECT_EQ(store.get("services", "default/old"), std::nullopt);
  EXPECT_EQ(store.get("services", "default/kept"), json(2));
  EXPECT_EQ(files_in(dir_ / "services"), (std::vector<std::string>{"default%2Fkept.json", "default%2Fnew.json"}));
}

TEST_F(WriteBatchTest, ALargeBatchIsWholeAfterCommitAndAfterReopen) {
  // More documents than the fsync-per-file threshold: the syncfs path.
  {
    FileStore store(dir_.string());
    WriteBatch batch;
    for (int i = 0; i < 500; ++i) batch.put("policies", "ns/p-" + std::to_string(i), {{"i", i}});
    store.commit(batch);
    EXPECT_EQ(store.list("policies").size(), 500u);
  }
  FileStore reopened(dir_.string());
  auto documents = reopened.list("policies");
  ASSERT_EQ(documents.size(), 500u);
  for (const auto& [key, value] : documents) EXPECT_EQ("ns/p-" + std::to_string(value["i"].get<int>()), key);
  for (const auto& name : files_in(dir_ / "policies")) EXPECT_FALSE(name.starts_with(".")) << name;
}

TEST_F(WriteBatchTest, NothingIsVisibleBeforeCommitOrAfterClear) {
  FileStore store(dir_.string());
  store.put("pods", "a", 1);
  {
    WriteBatch abandoned;
    abandoned.put("pods", "a", 2);
    abandoned.put("pods", "b", 3);
    abandoned.erase("pods", "a");
    EXPECT_EQ(store.get("pods", "a"), json(1));
    EXPECT_EQ(store.get("pods", "b"), std::nullopt);
  }  // dropped without commit
  WriteBatch cleared;
  cleared.put("pods", "c", 4);
  cleared.erase("pods", "a");
  cleared.clear();
  EXPECT_TRUE(cleared.empty());
  store.commit(cleared);
  EXPECT_EQ(files_in(dir_ / "pods"), std::vector<std::string>{"a.json"});
  EXPECT_EQ(store.get("pods", "a"), json(1));
}

TEST_F(WriteBatchTest, TheLastChangeToADocumentWins) {
  FileStore store(dir_.string());
  store.put("pods", "gone", 0);
  WriteBatch batch;
  batch.put("pods", "a", 1);
  batch.put("pods", "a", 2);
  batch.put("pods", "put-then-erased", 1);
  batch.erase("pods", "put-then-erased");
  batch.erase("pods", "gone");
  batch.put("pods", "gone", "back");
  EXPECT_EQ(batch.size(), 3u);
  store.commit(batch);
  EXPECT_EQ(store.get("pods", "a"), json(2));
  EXPECT_EQ(store.get("pods", "put-then-erased"), std::nullopt);
  EXPECT_EQ(store.get("pods", "gone"), json("back"));
}

TEST_F(WriteBatchTest, KeysWithAnyCharacterRoundTrip) {
  FileStore store(dir_.string());
  const std::vector<std::string> keys = {"default/frontend", "10.0.0.0/8", ".",        "..",
                                         ".hidden",          "a%2Fb",      "with space", "ünïcode",
                                         "x.json",           "tab\there",  "new\nline"};
  WriteBatch batch;
  for (const auto& key : keys) batch.put("things", key, key);
  store.commit(batch);
  std::vector<std::string> listed;
  for (const auto& [key, value] : store.list("things")) {
    EXPECT_EQ(value, json(key));
    listed.push_back(key);
  }
  std::vector<std::string> sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(listed, sorted);

  WriteBatch erase_all;
  for (const auto& key : keys) erase_all.erase("things", key);
  store.commit(erase_all);
  EXPECT_TRUE(store.list("things").empty());
  EXPECT_TRUE(files_in(dir_ / "things").empty());
}

TEST_F(WriteBatchTest, BadNamesFailWhenStaged) {
  WriteBatch batch;
  EXPECT_THAT(error_of([&] { batch.put("pods", "", 1); }), HasSubstr("empty key"));
  EXPECT_THAT(error_of([&] { batch.erase("../escape", "a"); }), HasSubstr("collection"));
  EXPECT_THAT(error_of([&] { batch.put("pods", std::string(300, 'k'), 1); }), HasSubstr("too long"));
  EXPECT_THAT(error_of([&] { batch.put("pods", "bad-utf8", std::string("\xff")); }), HasSubstr("pods/bad-utf8"));
  EXPECT_TRUE(batch.empty());
}

TEST_F(WriteBatchTest, AFailureBeforeTheRenamesLeavesTheStoreAsItWas) {
  FileStore store(dir_.string());
  store.put("good", "a", "old");
  // A collection whose directory cannot hold files: writing its temp file fails.
  std::ofstream(dir_ / "blocked") << "a file, not a directory";
  WriteBatch batch;
  batch.put("good", "a", "new");
  batch.put("good", "b", "new");
  batch.put("blocked", "c", "new");
  EXPECT_THAT(error_of([&] { store.commit(batch); }), HasSubstr("blocked"));
  EXPECT_TRUE(batch.empty());
  EXPECT_EQ(store.get("good", "a"), json("old"));
  EXPECT_EQ(files_in(dir_ / "good"), std::vector<std::string>{"a.json"});  // no temp file left
}

TEST_F(WriteBatchTest, AFailureDuringTheRenamesSaysHowMuchWasMade) {
  FileStore store(dir_.string());
  // A directory where a document should be: its erase fails after the first put was renamed.
  fs::create_directories(dir_ / "pods" / "stuck.json" / "inside");
  WriteBatch batch;
  batch.put("pods", "first", 1);
  batch.erase("pods", "stuck");
  batch.put("pods", "last", 3);
  EXPECT_THAT(error_of([&] { store.commit(batch); }), HasSubstr("1 of the batch's 3 changes were made"));
  EXPECT_EQ(store.get("pods", "first"), json(1));
  EXPECT_EQ(store.get("pods", "last"), std::nullopt);
  for (const auto& name : files_in(dir_ / "pods")) EXPECT_FALSE(name.starts_with(".")) << name;
}

TEST_F(WriteBatchTest, TempFilesOfAnInterruptedCommitAreRemovedOnReopen) {
  {
    FileStore store(dir_.string());
    store.put("services", "default/a", "old");
    store.put("policies", "p", "old");
  }
  // What a crash after writing a batch's temp files and before renaming them leaves.
  std::ofstream(dir_ / "services" / ".tmp-4242-1") << "{\"new\": true}\n";
  std::ofstream(dir_ / "services" / ".tmp-4242-2") << "{\"half";
  std::ofstream(dir_ / "policies" / ".tmp-4242-3") << "\"new\"\n";
  FileStore reopened(dir_.string());
  EXPECT_EQ(files_in(dir_ / "services"), std::vector<std::string>{"default%2Fa.json"});
  EXPECT_EQ(files_in(dir_ / "policies"), std::vector<std::string>{"p.json"});
  EXPECT_EQ(reopened.get("services", "default/a"), json("old"));
  EXPECT_EQ(reopened.get("policies", "p"), json("old"));
}

}  // namespace
}  // namespace pilus::store
