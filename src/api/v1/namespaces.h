// GET /v1/namespaces, shaped as the Kubernetes API returns them.
#pragma once

#include "api/v1/meta.h"

namespace pilus::api::v1 {

struct NamespaceStatus {
  std::string phase = "Active";
};

void fields(auto& f, Is<NamespaceStatus> auto& s) { f("phase", s.phase); }

struct Namespace {
  std::string api_version = "v1";
  std::string kind = "Namespace";
  ObjectMeta metadata;
  NamespaceStatus status;
};

void fields(auto& f, Is<Namespace> auto& n) {
  f("apiVersion", n.api_version);
  f("kind", n.kind);
  f("metadata", n.metadata);
  f("status", n.status);
}

inline std::string namespace_of(const Namespace&) { return ""; }  // cluster-scoped

using NamespaceList = List<Namespace>;

}  // namespace pilus::api::v1
