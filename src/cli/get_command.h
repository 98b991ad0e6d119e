// `pilus get`: kubectl's habits over the agent's list views (-n, -A, -l, NAME..., -o).
#pragma once

#include <string>
#include <vector>

#include "cli/client_commands.h"

namespace pilus::cli {

struct GetOptions {
  std::string kind;                 // pods, services, endpoints, identities, namespaces, policies (or an alias)
  std::vector<std::string> names;   // only these, in this order; each must exist
  std::string ns = "default";       // -n/--namespace, for namespaced kinds
  bool all_namespaces = false;      // -A/--all-namespaces
  std::string selector;             // -l/--selector, Kubernetes' label selector syntax
};

// -o: "" (a table), wide (more columns), name (kind/name per line), json, yaml. One name gives the
// object itself in json/yaml, otherwise a List with items, as kubectl prints.
int get_command(const ClientOptions& o, const GetOptions& g);

// The query string the list views take: namespace=...&labelSelector=... (percent-encoded).
std::string list_query(const GetOptions& g, bool namespaced);

}  // namespace pilus::cli
