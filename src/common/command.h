// Running helper programs (iproute2) without a shell, capturing their output.
#pragma once

#include <string>
#include <vector>

namespace pilus {

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs argv[0] (searched in PATH) with argv; never throws for a non-zero exit.
CommandResult run_command(const std::vector<std::string>& argv);

// Runs argv and throws pilus::Error quoting the command and its stderr on failure.
std::string run_checked(const std::vector<std::string>& argv);

std::string join_command(const std::vector<std::string>& argv);

}  // namespace pilus
