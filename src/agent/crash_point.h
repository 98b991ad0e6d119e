// A test-only hook: PILUS_TEST_CRASH_AT=<point>:<n> makes the agent SIGKILL itself the n-th time
// it passes <point> (e.g. "pod:3": after creating the third pod of an apply, before its commit),
// so that e2e tests can crash an apply at an exact place. Unset, it costs one getenv.
#pragma once

#include <signal.h>

#include <cstdlib>
#include <string>

namespace pilus::agent {

inline void crash_point(const char* point, size_t n) {
  static const char* at = std::getenv("PILUS_TEST_CRASH_AT");
  if (at && std::string(at) == std::string(point) + ":" + std::to_string(n)) ::raise(SIGKILL);
}

}  // namespace pilus::agent
