// The labels a container was created with (`podman run --label app=web`), read from podman's own
// state. During CNI ADD podman holds the container's lock, so its CLI and API (which take that
// lock) cannot be asked; its configuration is already in the database `podman create` wrote.
// Podman 4 keeps it in a bbolt file (bucket "ctr" / <container id> / key "config", the container's
// JSON configuration with "labels"); podman 5's SQLite database (ContainerConfig.JSON) too.
#pragma once

#include <map>
#include <optional>
#include <string>

namespace pilus::cni {

inline constexpr const char* kPodmanBoltDb = "/var/lib/containers/storage/libpod/bolt_state.db";
inline constexpr const char* kPodmanSqliteDb = "/var/lib/containers/storage/db.sql";

// nullopt: the database has no such container (another runtime's, or podman's database is
// elsewhere). Throws pilus::Error when the database exists but cannot be read.
std::optional<std::map<std::string, std::string>> podman_container_labels(const std::string& bolt_db,
                                                                          const std::string& sqlite_db,
                                                                          const std::string& container_id);

}  // namespace pilus::cni
