// The message of the pilus::Error a call throws, for tests that check what bad input is told.
#pragma once

#include <string>

#include "common/error.h"

namespace pilus::testing {

// "<no error>" when the call returns normally; other exceptions pass through.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const pilus::Error& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace pilus::testing
