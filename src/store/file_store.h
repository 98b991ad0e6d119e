// The agent's desired state on disk: JSON documents, one file per key, grouped by collection.
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/write_batch.h"

namespace pilus::store {

// Layout: <dir>/<collection>/<encoded key>.json. Keys are percent-encoded so that any key
// ("default/frontend", "10.0.0.0/8") is one file name and list() can give the original back.
// Every put/erase is durable when it returns (temp file + fsync + rename + fsync of the
// directory), so a crash leaves either the old or the new document, never a torn one.
// One agent owns a directory: opening it removes temp files another writer may still be using.
//
// Many changes at once go through a WriteBatch and commit(), which costs one round of syncs for
// the whole batch instead of two fsyncs per document: every new document is first written to a
// temp file and made durable (one syncfs(2) of the store's file system, or an fsync per file for
// a small batch), only then renamed over its target or unlinked, and each touched collection
// directory is fsynced once at the end. What a crash can leave:
//   - before the first rename: nothing of the batch (its temp files are removed on reopen);
//   - during the renames and unlinks: each document of the batch either old or new, never torn,
//     but some documents new and others old (ext4 in practice keeps a prefix in staging order,
//     which the store does not promise). A reader of the store must therefore accept any mix
//     of old and new documents of one batch: the agent's restore() does (each collection is
//     loaded on its own; a service without pods has no backends, a pod or policy in a namespace
//     not stored is still loaded and can be deleted).
//   - after commit() returns: the whole batch.
class FileStore {
 public:
  // Creates dir (and missing parents) with mode 0700 and removes temp files left by a crash.
  explicit FileStore(std::string dir);

  FileStore(const FileStore&) = delete;
  FileStore& operator=(const FileStore&) = delete;

  // Collections are fixed names chosen by the code ([a-z0-9_-], not starting with '-');
  // keys are any non-empty text. Both throw pilus::Error on a name they cannot store.
  void put(const std::string& collection, const std::string& key, const nlohmann::json& value);
  // A missing key is nullopt; a file that is not valid JSON throws pilus::Error naming the file.
  std::optional<nlohmann::json> get(const std::string& collection, const std::string& key) const;
  // True when the key existed.
  bool erase(const std::string& collection, const std::string& key);
  // Every document of the collection, sorted by key; throws on the first corrupt file.
  std::vector<std::pair<std::string, nlohmann::json>> list(const std::string& collection) const;

  // Makes every change of the batch durable (see above) and empties it, even when it throws.
  // An error before the first rename leaves the store as it was; one after names how many of
  // the batch's changes were made (the others were not).
  void commit(WriteBatch& batch);

  std::string dir() const { return dir_; }

 private:
  std::string collection_dir(const std::string& collection) const;
  void ensure_collection_dir(const std::string& collection);
  void remove_temp_files();

  std::string dir_;
  mutable std::mutex mutex_;
};

// The file name a key is stored under, and back. Exposed for tests and tools that read the
// directory; key_of_file_name is nullopt for names key_file_name never produces (stray files).
std::string key_file_name(const std::string& key);
std::optional<std::string> key_of_file_name(const std::string& file_name);
// Throws pilus::Error for a collection name the store refuses (see put).
void check_collection_name(const std::string& collection);
// The text a document is stored as; throws nlohmann::json::exception (e.g. invalid UTF-8).
std::string encode_document(const nlohmann::json& value);

}  // namespace pilus::store
