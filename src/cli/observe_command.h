// `pilus observe`: flows from the agent with hubble observe's filters.
#pragma once

#include <string>
#include <vector>

#include "cli/client_commands.h"

namespace pilus::cli {

struct ObserveOptions {
  bool follow = false;
  bool all = false;
  int last = -1;  // -1: the agent's default (20)
  std::vector<std::string> filter_args;  // as typed: --pod x --not --verdict DROPPED ...
};

// Takes observe's own options (-f/--follow, --all, --last N, -o/--output X,
// --socket X) out of argv; the rest are filters, kept in order.
void parse_observe_args(const std::vector<std::string>& argv, ObserveOptions& opts, ClientOptions& client);

int observe_command(const ClientOptions& o, const ObserveOptions& opts);

}  // namespace pilus::cli
