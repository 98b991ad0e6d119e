// Validation of Namespace manifests.
#include "manifest/namespace.h"

#include "manifest/validation.h"

namespace pilus::manifest {

NamespaceObject parse_namespace(const Document& d) {
  return read_document(d, [](ObjectReader& root) {
    Metadata meta = read_metadata(root, Scope::kCluster, dns_label_error);
    return NamespaceObject{std::move(meta.name), std::move(meta.labels), std::move(meta.annotations)};
  });
}

}  // namespace pilus::manifest
