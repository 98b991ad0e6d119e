// The state directory: opening its store and migrating the old one-file-per-key layout.
#include "store/state_dir.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "store/sqlite_store.h"

namespace pilus::store {

namespace fs = std::filesystem;

namespace {

constexpr const char* kDatabase = "store.db";
constexpr std::string_view kSuffix = ".json";
constexpr std::string_view kTempPrefix = ".tmp-";  // the old store's unfinished writes
constexpr const char* kMarkerCollection = "store-meta";
constexpr const char* kMarkerKey = "file-layout-migrated";

bool is_plain_key_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '.';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;  // lower case was never produced
}

// mkdir -p with 0700 for the components it creates; existing directories keep their mode.
void make_dirs(const fs::path& dir) {
  fs::path current;
  for (const auto& part : dir) {
    current /= part;
    if (::mkdir(current.c_str(), 0700) != 0 && errno != EEXIST)
      throw system_error("store: cannot create directory " + current.string(), errno);
  }
  if (!fs::is_directory(dir)) fail("store: {} is not a directory", dir.string());
}

bool is_collection_name(const std::string& name) {
  try {
    check_collection_name(name);
    return true;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace

std::string key_file_name(const std::string& key) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string name;
  for (size_t i = 0; i < key.size(); ++i) {
    auto c = static_cast<unsigned char>(key[i]);
    if (is_plain_key_char(c) && !(i == 0 && c == '.')) {
      name += static_cast<char>(c);
    } else {
      name += '%';
      name += kHex[c >> 4];
      name += kHex[c & 0xF];
    }
  }
  return name + std::string(kSuffix);
}

std::optional<std::string> key_of_file_name(const std::string& file_name) {
  if (file_name.size() <= kSuffix.size() || !file_name.ends_with(kSuffix)) return std::nullopt;
  std::string_view encoded(file_name.data(), file_name.size() - kSuffix.size());
  std::string key;
  for (size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] != '%') {
      key += encoded[i];
      continue;
    }
    if (i + 2 >= encoded.size()) return std::nullopt;
    int hi = hex_value(encoded[i + 1]), lo = hex_value(encoded[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    key += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  if (key.empty() || key_file_name(key) != file_name) return std::nullopt;
  return key;
}

size_t migrate_file_layout(const std::string& dir, Store& store) {
  struct Document {
    fs::path file;
    std::string collection, key;
  };
  std::vector<Document> documents;
  std::vector<fs::path> leftovers;  // temp files of the old store's interrupted writes
  std::error_code ec;
  for (const auto& c : fs::directory_iterator(dir, ec)) {
    std::string collection = c.path().filename();
    if (!c.is_directory(ec) || !is_collection_name(collection)) continue;
    for (const auto& f : fs::directory_iterator(c.path(), ec)) {
      std::string name = f.path().filename();
      if (name.starts_with(kTempPrefix)) leftovers.push_back(f.path());
      auto key = key_of_file_name(name);
      if (key && f.is_regular_file(ec)) documents.push_back({f.path(), collection, *key});
    }
  }
  if (ec) fail("store: cannot read {}: {}", dir, ec.message());
  if (documents.empty() && leftovers.empty()) return 0;

  size_t imported = 0;
  if (!store.get(kMarkerCollection, kMarkerKey)) {
    WriteBatch batch;
    for (const auto& d : documents) {
      std::ifstream in(d.file);
      std::stringstream text;
      text << in.rdbuf();
      if (!in) fail("store: cannot read {}", d.file.string());
      nlohmann::json value;
      try {
        value = nlohmann::json::parse(text.str());
      } catch (const nlohmann::json::parse_error& e) {
        fail("store: migrating {}: {} is corrupt (not valid JSON): {}", dir, d.file.string(), e.what());
      }
      batch.put(d.collection, d.key, value);
    }
    batch.put(kMarkerCollection, kMarkerKey, nlohmann::json{{"documents", documents.size()}});
    store.commit(batch);
    imported = documents.size();
  }
  for (const auto& d : documents) fs::remove(d.file, ec);
  for (const auto& f : leftovers) fs::remove(f, ec);
  for (const auto& d : documents) {
    std::error_code ignored;
    if (fs::is_empty(d.file.parent_path(), ignored)) fs::remove(d.file.parent_path(), ignored);
  }
  return imported;
}

std::unique_ptr<Store> open_state_store(const std::string& dir) {
  if (dir.empty()) fail("store: empty state directory name");
  make_dirs(dir);
  auto store = std::make_unique<SqliteStore>((fs::path(dir) / kDatabase).string());
  migrate_file_layout(dir, *store);
  return store;
}

bool has_state(const std::string& dir) {
  return fs::exists(fs::path(dir) / kDatabase) || fs::exists(fs::path(dir) / "config");
}

}  // namespace pilus::store
