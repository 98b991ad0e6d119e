// FileStore: durability layout, key encoding, corrupt files and crash leftovers.
#include "store/file_store.h"

#include <gtest/gtest.h>
#include <gmock/gmock.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/error.h"
#include "unit/error_of.h"
#include "unit/store_dir_fixture.h"

namespace pilus::store {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

using pilus::testing::error_of;
using pilus::testing::files_in;

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

class FileStoreTest : public pilus::testing::StoreDirTest {};

TEST_F(FileStoreTest, CreatesItsDirectoryPrivate) {
  FileStore store((dir_ / "nested").string());
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "nested").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(store.dir(), (dir_ / "nested").string());
}

TEST_F(FileStoreTest, PutThenGet) {
  FileStore store(dir_.string());
  json pod = {{"name", "frontend"}, {"labels", {{"app", "web"}}}};
  store.put("pods", "frontend", pod);
  EXPECT_EQ(store.get("pods", "frontend"), pod);
  EXPECT_EQ(store.get("pods", "backend"), std::nullopt);
  EXPECT_EQ(store.get("services", "frontend"), std::nullopt);
}

TEST_F(FileStoreTest, OverwriteReplacesTheDocument) {
  FileStore store(dir_.string());
  store.put("pods", "a", {{"v", 1}});
  store.put("pods", "a", {{"v", 2}});
  EXPECT_EQ(store.get("pods", "a"), (json{{"v", 2}}));
  EXPECT_EQ(store.list("pods").size(), 1u);
}

TEST_F(FileStoreTest, EraseSaysWhetherTheKeyExisted) {
  FileStore store(dir_.string());
  store.put("pods", "a", 1);
  EXPECT_TRUE(store.erase("pods", "a"));
  EXPECT_FALSE(store.erase("pods", "a"));
  EXPECT_FALSE(store.erase("never-written", "a"));
  EXPECT_EQ(store.get("pods", "a"), std::nullopt);
}

TEST_F(FileStoreTest, NoTempFilesAreLeftBehind) {
  FileStore store(dir_.string());
  for (int i = 0; i < 20; ++i) store.put("pods", "p" + std::to_string(i % 5), i);
  for (const auto& name : files_in(dir_ / "pods")) EXPECT_FALSE(name.starts_with(".")) << name;
  EXPECT_EQ(files_in(dir_ / "pods").size(), 5u);
}

TEST_F(FileStoreTest, KeysWithAnyCharacterRoundTrip) {
  FileStore store(dir_.string());
  const std::vector<std::string> keys = {"default/frontend", "10.0.0.0/8", ".", "..", ".hidden",
                                         "a%2Fb",            "with space", "ünïcode", "x.json"};
  for (const auto& key : keys) store.put("things", key, key);
  for (const auto& key : keys) EXPECT_EQ(store.get("things", key), json(key)) << key;
  // One flat file per key: no subdirectories appear for '/' in a key.
  for (const auto& entry : fs::directory_iterator(dir_ / "things"))
    EXPECT_TRUE(entry.is_regular_file()) << entry.path();

  std::vector<std::string> listed;
  for (const auto& [key, value] : store.list("things")) {
    EXPECT_EQ(value, json(key));
    listed.push_back(key);
  }
  std::vector<std::string> sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(listed, sorted);
}

TEST_F(FileStoreTest, FileNameEncodingIsReversibleAndCanonical) {
  EXPECT_EQ(key_file_name("default/frontend"), "default%2Ffrontend.json");
  EXPECT_EQ(key_file_name(".."), "%2E..json");
  EXPECT_EQ(key_of_file_name("default%2Ffrontend.json"), "default/frontend");
  EXPECT_EQ(key_of_file_name("%2E..json"), "..");
  // Spellings key_file_name never produces are not keys, so no two files share a key.
  EXPECT_EQ(key_of_file_name("default%2ffrontend.json"), std::nullopt);
  EXPECT_EQ(key_of_file_name("%61.json"), std::nullopt);
  EXPECT_EQ(key_of_file_name("bad%2.json"), std::nullopt);
  EXPECT_EQ(key_of_file_name("README"), std::nullopt);
  EXPECT_EQ(key_of_file_name(".json"), std::nullopt);
}

TEST_F(FileStoreTest, ListIsSortedByKey) {
  FileStore store(dir_.string());
  store.put("pods", "default/web", 3);
  store.put("pods", "app/b", 2);
  store.put("pods", "app/a", 1);
  auto items = store.list("pods");
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0], (std::pair<std::string, json>{"app/a", 1}));
  EXPECT_EQ(items[1], (std::pair<std::string, json>{"app/b", 2}));
  EXPECT_EQ(items[2], (std::pair<std::string, json>{"default/web", 3}));
  EXPECT_TRUE(store.list("empty").empty());
}

TEST_F(FileStoreTest, CorruptFileErrorNamesTheFile) {
  FileStore store(dir_.string());
  store.put("pods", "default/good", 1);
  fs::path bad = dir_ / "pods" / "default%2Fbad.json";
  write_file(bad, "{\"truncated\": ");
  EXPECT_THAT(error_of([&] { store.get("pods", "default/bad"); }), HasSubstr(bad.string()));
  EXPECT_THAT(error_of([&] { store.list("pods"); }), HasSubstr(bad.string()));
  EXPECT_EQ(store.get("pods", "default/good"), json(1));
}

TEST_F(FileStoreTest, StrayFilesAreNotDocuments) {
  FileStore store(dir_.string());
  store.put("pods", "a", 1);
  write_file(dir_ / "pods" / "README", "not json");
  write_file(dir_ / "pods" / "a.json~", "not json");
  EXPECT_EQ(store.list("pods").size(), 1u);
}

TEST_F(FileStoreTest, LeftoverTempFilesAreRemovedOnOpen) {
  {
    FileStore store(dir_.string());
    store.put("pods", "a", 1);
  }
  // What a crash between create and rename leaves: a half-written temp file.
  write_file(dir_ / "pods" / ".tmp-4242-7", "{\"half");
  FileStore reopened(dir_.string());
  EXPECT_EQ(files_in(dir_ / "pods"), std::vector<std::string>{"a.json"});
  EXPECT_EQ(reopened.list("pods").size(), 1u);
}

TEST_F(FileStoreTest, ReopenSeesTheData) {
  {
    FileStore store(dir_.string());
    store.put("pods", "default/frontend", {{"ip", "10.244.0.2"}});
    store.put("identities", "256", {{"labels", {"k8s:app=web"}}});
    store.erase("identities", "256");
  }
  FileStore store(dir_.string());
  EXPECT_EQ(store.get("pods", "default/frontend"), (json{{"ip", "10.244.0.2"}}));
  EXPECT_TRUE(store.list("identities").empty());
}

TEST_F(FileStoreTest, RejectsNamesItCannotStore) {
  FileStore store(dir_.string());
  EXPECT_THAT(error_of([&] { store.put("pods", "", 1); }), HasSubstr("empty key"));
  EXPECT_THAT(error_of([&] { store.put("../escape", "a", 1); }), HasSubstr("collection"));
  EXPECT_THAT(error_of([&] { store.get("Pods/x", "a"); }), HasSubstr("collection"));
  EXPECT_THAT(error_of([&] { store.put("pods", std::string(300, 'k'), 1); }), HasSubstr("too long"));
  EXPECT_FALSE(fs::exists(root_ / "escape"));
}

TEST_F(FileStoreTest, ConcurrentWritersKeepEveryDocumentWhole) {
  FileStore store(dir_.string());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&store, t] {
      for (int i = 0; i < 10; ++i) {
        store.put("pods", "ns/pod-" + std::to_string(t) + "-" + std::to_string(i), i);
        store.put("shared", "same", {{"writer", t}, {"i", i}});
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(store.list("pods").size(), 40u);
  auto shared = store.get("shared", "same");
  ASSERT_TRUE(shared);
  EXPECT_EQ((*shared)["i"], 9);
  for (const auto& name : files_in(dir_ / "shared")) EXPECT_EQ(name, "same.json");
}

}  // namespace
}  // namespace pilus::store
