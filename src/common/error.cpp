#include "common/error.h"

#include <cstring>

namespace pilus {

Error system_error(const std::string& what, int errno_value) {
  return Error(what + ": " + std::strerror(errno_value));
}

}  // namespace pilus
