// All supported manifest kinds as one type, and the dispatch from a document's apiVersion/kind to its parser.
#pragma once

#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "manifest/cilium_network_policy.h"
#include "manifest/document.h"
#include "manifest/namespace.h"
#include "manifest/network_policy.h"
#include "manifest/pod.h"
#include "manifest/service.h"

namespace pilus::manifest {

// Adding a kind: a <kind>.h/.cpp with a struct (with `static constexpr kKind`) and
// parse_<kind>(const Document&), an alternative here, and a row in kKinds in object.cpp.
using Object = std::variant<NamespaceObject, Pod, Service, NetworkPolicy, CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy>;

// Strict: unknown kind, unsupported apiVersion or any invalid field throws.
Object parse_object(const Document& d);

// Validates every document of every source before returning anything. All errors
// found (syntax, fields, the same kind/namespace/name twice) are reported together,
// one per line, in one pilus::Error. No objects at all is an error too.
// `warnings`, when given, receives the fields that were accepted but have no effect in pilus.
std::vector<std::pair<Document, Object>> parse_all(const std::vector<Source>& sources,
                                                   std::vector<std::string>* warnings = nullptr);

std::string_view kind_of(const Object& o);

// False for cluster-scoped kinds (Namespace); unknown kinds count as namespaced.
bool is_namespaced_kind(std::string_view kind);

}  // namespace pilus::manifest
