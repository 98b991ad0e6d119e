// GET /v1/identities: the security identities in use, reserved ones included.
#pragma once

#include "api/v1/meta.h"

namespace pilus::api::v1 {

struct Identity {
  std::uint32_t id = 0;
  std::vector<std::string> labels;  // "k8s:app=web", "reserved:world"
  std::uint64_t references = 0;
  bool reserved = false;
};

void fields(auto& f, Is<Identity> auto& i) {
  f("id", i.id);
  f("labels", i.labels);
  f("references", i.references);
  f("reserved", i.reserved);
}

inline std::string namespace_of(const Identity&) { return ""; }  // cluster-scoped

using IdentityList = List<Identity>;

}  // namespace pilus::api::v1
