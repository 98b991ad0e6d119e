// Kind table and whole-manifest validation for apply/delete.
#include "manifest/object.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "common/error.h"
#include "manifest/validation.h"

namespace pilus::manifest {

namespace {

struct KindInfo {
  std::string_view kind;
  std::string_view api_version;
  Scope scope;
  Object (*parse)(const Document&);
};

template <typename T, T (*Parse)(const Document&)>
Object parse_as(const Document& d) {
  return Parse(d);
}

// A kind served under several apiVersions gets one row per version.
constexpr KindInfo kKinds[] = {
    {NamespaceObject::kKind, "v1", Scope::kCluster, parse_as<NamespaceObject, parse_namespace>},
    {Pod::kKind, "v1", Scope::kNamespaced, parse_as<Pod, parse_pod>},
    {Service::kKind, "v1", Scope::kNamespaced, parse_as<Service, parse_service>},
    {NetworkPolicy::kKind, "networking.k8s.io/v1", Scope::kNamespaced, parse_as<NetworkPolicy, parse_network_policy>},
    {CiliumNetworkPolicy::kKind, "cilium.io/v2", Scope::kNamespaced,
     parse_as<CiliumNetworkPolicy, parse_cilium_network_policy>},
    {CiliumClusterwideNetworkPolicy::kKind, "cilium.io/v2", Scope::kCluster,
     parse_as<CiliumClusterwideNetworkPolicy, parse_cilium_clusterwide_network_policy>},
};

std::string supported_kinds() {
  std::vector<std::string_view> names;
  for (const KindInfo& k : kKinds) {
    if (std::find(names.begin(), names.end(), k.kind) == names.end()) names.push_back(k.kind);
  }
  std::sort(names.begin(), names.end());
  return fmt::format("{}", fmt::join(names, ", "));
}

}  // namespace

Object parse_object(const Document& d) {
  std::vector<std::string_view> versions;
  for (const KindInfo& k : kKinds) {
    if (k.kind != d.kind) continue;
    if (k.api_version == d.api_version) return k.parse(d);
    versions.push_back(k.api_version);
  }
  if (versions.empty()) {
    fail_field(d.describe(), "", fmt::format("unknown kind {} (supported: {})", describe_value(d.kind), supported_kinds()));
  }
  fail_field(d.describe(), "apiVersion",
             fmt::format("{} is not supported for kind {} (use \"{}\")", describe_value(d.api_version), d.kind,
                         fmt::join(versions, "\" or \"")));
}

std::vector<std::pair<Document, Object>> parse_all(const std::vector<Source>& sources,
                                                   std::vector<std::string>* warnings) {
  std::vector<std::string> found_warnings;
  WarningScope warning_scope(found_warnings);
  std::vector<std::pair<Document, Object>> out;
  std::vector<std::string> errors;
  std::map<std::tuple<std::string, std::string, std::string>, std::string> seen;  // kind, ns, name -> describe()
  for (const Source& source : sources) {
    std::vector<Document> docs;
    try {
      docs = parse_documents(source);
    } catch (const Error& e) {
      errors.emplace_back(e.what());
      continue;
    }
    for (Document& d : docs) {
      if (std::string name = d.name(); !name.empty()) {
        auto [it, added] = seen.emplace(std::tuple(d.kind, d.ns(), name), d.describe());
        if (!added) errors.push_back(fmt::format("{}: duplicate of {}", d.describe(), it->second));
      }
      try {
        Object o = parse_object(d);
        out.emplace_back(std::move(d), std::move(o));
      } catch (const Error& e) {
        errors.emplace_back(e.what());
      }
    }
  }
  if (!errors.empty()) {
    // Everything at once, so one run shows all there is to fix; capped to stay readable.
    constexpr size_t kMaxShown = 20;
    std::string message;
    for (size_t i = 0; i < errors.size() && i < kMaxShown; ++i) message += (i ? "\n" : "") + errors[i];
    if (errors.size() > kMaxShown) message += fmt::format("\n... and {} more errors", errors.size() - kMaxShown);
    throw Error(message);
  }
  if (out.empty()) {
    std::vector<std::string> names;
    for (const Source& s : sources) names.push_back(s.name);
    fail("no objects found in {}", fmt::join(names, ", "));
  }
  if (warnings) warnings->insert(warnings->end(), found_warnings.begin(), found_warnings.end());
  return out;
}

std::string_view kind_of(const Object& o) {
  return std::visit([](const auto& x) { return std::decay_t<decltype(x)>::kKind; }, o);
}

bool is_namespaced_kind(std::string_view kind) {
  for (const KindInfo& k : kKinds) {
    if (k.kind == kind) return k.scope == Scope::kNamespaced;
  }
  return true;
}

}  // namespace pilus::manifest
