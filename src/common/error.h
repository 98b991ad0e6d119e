// pilus's one error convention: functions throw pilus::Error with a message
// that names what was wrong; the API server and the CLI catch it at the boundary.
#pragma once

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace pilus {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Error from a failed system call: appends strerror(errno_value).
Error system_error(const std::string& what, int errno_value);

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace pilus
