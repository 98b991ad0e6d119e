// The agent's state directory: its store (<dir>/store.db, a SqliteStore) and the migration from
// the layout of earlier versions (one JSON file per key: <dir>/<collection>/<encoded key>.json).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "store/store.h"

namespace pilus::store {

// Creates dir (mode 0700, with missing parents), opens its store and migrates a directory of the
// old layout into it (migrate_file_layout).
std::unique_ptr<Store> open_state_store(const std::string& dir);

// True when dir holds an agent's state, in either layout.
bool has_state(const std::string& dir);

// Imports every document of the old layout under dir into store in one transaction, then removes
// the imported files (and collection directories left empty). A crash before the transaction
// leaves the old layout to import again; after it, a marker key makes the next run only remove
// the leftover files. Returns how many documents were imported. A file that is not valid JSON
// fails the migration, naming the file, with nothing imported.
size_t migrate_file_layout(const std::string& dir, Store& store);

// The old layout's file name for a key (percent-encoded, ".json"), and back; key_of_file_name is
// nullopt for names the old store never produced.
std::string key_file_name(const std::string& key);
std::optional<std::string> key_of_file_name(const std::string& file_name);

}  // namespace pilus::store
