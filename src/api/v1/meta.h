// What the Kubernetes-shaped resources share: metadata, lists, IntOrString.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "api/v1/schema.h"

namespace pilus::api::v1 {

using Labels = std::map<std::string, std::string>;

struct ObjectMeta {
  std::string name;
  std::string ns;  // "" for cluster-scoped objects
  Labels labels;
  Labels annotations;
};

void fields(auto& f, Is<ObjectMeta> auto& m) {
  f("name", m.name);
  f("namespace", m.ns, Presence::kOmitEmpty);
  f("labels", m.labels);
  f("annotations", m.annotations, Presence::kOmitEmpty);
}

// The key of every list's items; the conntrack list is streamed and writes it itself.
inline constexpr const char* kItemsKey = "items";

// {"apiVersion": "v1", "kind": "List", "items": [...]}; the pilus-only lists (endpoints,
// identities, BPF maps) have no apiVersion or kind.
template <class T>
struct List {
  using Item = T;
  std::string api_version;
  std::string kind;
  std::vector<T> items;

  static List kube(std::vector<T> items = {}) { return {"v1", "List", std::move(items)}; }
};

template <class L>
concept AnyList = std::same_as<std::remove_const_t<L>, List<typename std::remove_const_t<L>::Item>>;

void fields(auto& f, AnyList auto& l) {
  f("apiVersion", l.api_version, Presence::kOmitEmpty);
  f("kind", l.kind, Presence::kOmitEmpty);
  f(kItemsKey, l.items);
}

// A port given by number or by name (Kubernetes' IntOrString).
struct IntOrString {
  std::int64_t number = 0;
  std::string name;  // used when not empty

  std::string text() const { return name.empty() ? std::to_string(number) : name; }
  bool operator==(const IntOrString&) const = default;
};

inline void to_json(nlohmann::json& j, const IntOrString& v) {
  if (v.name.empty())
    j = v.number;
  else
    j = v.name;
}

inline void read_value(JsonField& field, IntOrString& v) {
  if (field.value().is_string())
    v = {0, field.string()};
  else
    v = {field.integer(), ""};
}

}  // namespace pilus::api::v1
