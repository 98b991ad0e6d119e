// `pilus observe`: flows from the agent with hubble observe's filters.
#pragma once

#include <string>
#include <vector>

#include "cli/client_commands.h"

namespace pilus::cli {

struct ObserveOptions {
  bool follow = false;
  bool all = false;
  int last = -1;   // -1: the agent's default (20)
  int first = -1;  // --first N: the oldest N stored flows; -1: not asked
  bool all_namespaces = false;  // -A: no namespace narrowing (hubble's default), refused with -n
  bool print_node_name = false;
  std::string time_format = "StampMilli";
  std::vector<std::string> filter_args;  // as typed: --pod x --not --verdict DROPPED ...
};

// Takes observe's own options (-f/--follow, --all, --last N, --first N, -o/--output X,
// --print-node-name, --time-format X, -A, --socket X) out of argv and spells hubble's short
// filters long (-n namespace, -t type, -l label); the rest are filters, kept in order.
void parse_observe_args(const std::vector<std::string>& argv, ObserveOptions& opts, ClientOptions& client);

int observe_command(const ClientOptions& o, const ObserveOptions& opts);

}  // namespace pilus::cli
