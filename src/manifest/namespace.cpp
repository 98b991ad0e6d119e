// Validation of Namespace manifests.
#include "manifest/namespace.h"

#include "manifest/validation.h"

namespace pilus::manifest {

NamespaceObject parse_namespace(const Document& d) {
  return read_document(d, [](ObjectReader& root) {
    Metadata meta = read_metadata(root, Scope::kCluster, dns_label_error);
    // kubectl writes `spec: {}`; the only field, finalizers, matters to a server that deletes
    // in stages, and pilus deletes a namespace at once.
    if (auto spec = root.optional("spec")) {
      spec->object([](ObjectReader& s) {
        if (auto finalizers = s.optional("finalizers")) {
          finalizers->string_list();
          if (!finalizers->is_empty_structure())
            finalizers->warn("ignored: pilus deletes a namespace at once, without finalizers");
        }
      });
    }
    return NamespaceObject{std::move(meta.name), std::move(meta.labels), std::move(meta.annotations)};
  });
}

}  // namespace pilus::manifest
