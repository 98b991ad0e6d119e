#include "cni/podman_labels.h"

#include <sqlite3.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "cni/bolt_db.h"
#include "common/error.h"

namespace pilus::cni {

namespace {

std::map<std::string, std::string> labels_of_config(const std::string& config, const std::string& where) {
  auto j = nlohmann::json::parse(config, nullptr, false);
  if (!j.is_object()) fail("{}: the container's configuration is not JSON", where);
  std::map<std::string, std::string> labels;
  if (j.contains("labels") && j["labels"].is_object())
    for (const auto& [k, v] : j["labels"].items())
      if (v.is_string()) labels[k] = v.get<std::string>();
  return labels;
}

std::optional<std::string> sqlite_config(const std::string& path, const std::string& id) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::string err = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    fail("cannot open podman's database {}: {}", path, err);
  }
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* st = nullptr;
  std::optional<std::string> out;
  if (sqlite3_prepare_v2(db, "SELECT JSON FROM ContainerConfig WHERE ID = ?", -1, &st, nullptr) != SQLITE_OK) {
    std::string err = sqlite3_errmsg(db);
    sqlite3_close(db);
    fail("podman's database {}: {}", path, err);
  }
  sqlite3_bind_text(st, 1, id.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st) == SQLITE_ROW) {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    if (text) out = std::string(text);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

}  // namespace

std::optional<std::map<std::string, std::string>> podman_container_labels(const std::string& bolt_db,
                                                                          const std::string& sqlite_db,
                                                                          const std::string& container_id) {
  if (!bolt_db.empty() && std::filesystem::exists(bolt_db)) {
    BoltDb db(bolt_db);
    if (auto config = db.get({"ctr", container_id}, "config")) return labels_of_config(*config, bolt_db);
  }
  if (!sqlite_db.empty() && std::filesystem::exists(sqlite_db)) {
    if (auto config = sqlite_config(sqlite_db, container_id)) return labels_of_config(*config, sqlite_db);
  }
  return std::nullopt;
}

}  // namespace pilus::cni
