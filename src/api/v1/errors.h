// The body of every error answer: {"error": "what went wrong"}.
#pragma once

#include "api/v1/schema.h"

namespace pilus::api::v1 {

struct ErrorBody {
  std::string error;
};

void fields(auto& f, Is<ErrorBody> auto& e) { f("error", e.error); }

}  // namespace pilus::api::v1
