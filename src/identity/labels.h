// Security labels as Cilium writes them ("k8s:app=frontend", "reserved:host", "cidr:10.0.0.0/8").
#pragma once

#include <compare>
#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace pilus::identity {

// Label sources, as Cilium names them.
inline constexpr std::string_view kSourceK8s = "k8s";
inline constexpr std::string_view kSourceReserved = "reserved";
inline constexpr std::string_view kSourceCidr = "cidr";
// Only in selectors: matches a label of any source.
inline constexpr std::string_view kSourceAny = "any";

// Label keys Cilium derives from a pod's namespace.
inline constexpr std::string_view kPodNamespaceLabel = "io.kubernetes.pod.namespace";
inline constexpr std::string_view kNamespaceLabelPrefix = "io.cilium.k8s.namespace.labels.";
// Set by the Kubernetes API server on every namespace; pilus has no API server, so pod_labels adds it.
inline constexpr std::string_view kNamespaceNameLabel = "kubernetes.io/metadata.name";
// A pod's spec.serviceAccountName, as Cilium labels it.
inline constexpr std::string_view kServiceAccountLabel = "io.cilium.k8s.policy.serviceaccount";

struct Label {
  std::string source;
  std::string key;
  std::string value;  // empty for labels like "reserved:host"

  // "source:key=value", or "source:key" when the value is empty.
  std::string to_string() const;
  auto operator<=>(const Label&) const = default;
};

// "k8s:app=web" -> {k8s, app, web}; "app=web" -> {default_source, app, web}; "reserved:host" ->
// {reserved, host, ""}. The source is the text before the first ':' only when that ':' comes
// before the first '=', so "app=a:b" has the value "a:b". Throws pilus::Error on an empty key or
// source. Selectors pass default_source "any" for Cilium's "no source means any source".
Label parse_label(std::string_view text, std::string_view default_source = kSourceK8s);

// Whether a selector label selects a label: same key and value, and the same source unless the
// selector's source is "any".
bool matches(const Label& selector, const Label& label);

// A sorted set of labels; its string form is canonical, so equal sets print the same and it can
// key a map.
class LabelSet {
 public:
  LabelSet() = default;
  LabelSet(std::initializer_list<Label> labels) : labels_(labels) {}

  void insert(Label label) { labels_.insert(std::move(label)); }
  bool contains(const Label& label) const { return labels_.count(label) > 0; }
  // Whether some label of the set is selected by the selector label (see matches()).
  bool has_match(const Label& selector) const;
  // True when every label has this source (false for the empty set).
  bool all_from_source(std::string_view source) const;
  bool any_from_source(std::string_view source) const;

  bool empty() const { return labels_.empty(); }
  size_t size() const { return labels_.size(); }
  auto begin() const { return labels_.begin(); }
  auto end() const { return labels_.end(); }

  // Comma-joined labels in set order, e.g. "k8s:app=web,k8s:io.kubernetes.pod.namespace=default".
  std::string to_string() const;

  auto operator<=>(const LabelSet&) const = default;
  bool operator==(const LabelSet&) const = default;

 private:
  std::set<Label> labels_;
};

// The inverse of LabelSet::to_string(); "" is the empty set. Labels without a source get "k8s".
LabelSet parse_label_set(std::string_view text);

// A pod's identity labels, as Cilium derives them: each pod label as k8s:key=value, the namespace
// as k8s:io.kubernetes.pod.namespace=<ns>, and each namespace label as
// k8s:io.cilium.k8s.namespace.labels.<key>=<value>. The namespace always has
// kubernetes.io/metadata.name=<ns> (as a Kubernetes API server would add), so namespaceSelectors
// on it work without a Namespace manifest. Throws pilus::Error on a label that cannot be written in
// the "source:key=value" form (empty key, '=' in a key, ',' anywhere).
LabelSet pod_labels(const std::map<std::string, std::string>& pod_labels, const std::string& ns,
                    const std::map<std::string, std::string>& namespace_labels);

// JSON: a label is its string form; a set is an array of them.
void to_json(nlohmann::json& j, const Label& label);
void from_json(const nlohmann::json& j, Label& label);
void to_json(nlohmann::json& j, const LabelSet& labels);
void from_json(const nlohmann::json& j, LabelSet& labels);

}  // namespace pilus::identity
