// The Namespace kind: a name plus the labels that namespace selectors and pod identities use.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "manifest/document.h"

namespace pilus::manifest {

struct NamespaceObject {
  static constexpr std::string_view kKind = "Namespace";
  std::string name;
  std::map<std::string, std::string> labels, annotations;
};

// Strict: anything but apiVersion, kind, metadata{name, labels, annotations}, spec{finalizers}
// and status is an error.
NamespaceObject parse_namespace(const Document& d);

}  // namespace pilus::manifest
