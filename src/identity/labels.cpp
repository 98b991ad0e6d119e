// Labels: parsing, printing and the pod label set Cilium derives identities from.
#include "identity/labels.h"

#include <algorithm>

#include "common/error.h"

namespace pilus::identity {

namespace {

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// Labels that could not be parsed back from their string form would give two sets the same
// canonical string, i.e. two different pods the same identity.
void check_writable(const std::string& key, const std::string& value, const std::string& what) {
  if (key.empty()) fail("{} label with an empty key", what);
  if (key.find_first_of("=,") != std::string::npos)
    fail("{} label key \"{}\" contains '=' or ','", what, key);
  if (value.find(',') != std::string::npos)
    fail("{} label {}={} has a ',' in its value", what, key, value);
}

}  // namespace

std::string Label::to_string() const {
  std::string text = source + ":" + key;
  if (!value.empty()) text += "=" + value;
  return text;
}

Label parse_label(std::string_view text, std::string_view default_source) {
  Label label;
  size_t colon = text.find(':');
  size_t equals = text.find('=');
  std::string_view rest = text;
  if (colon != std::string_view::npos && colon < equals) {
    label.source = std::string(text.substr(0, colon));
    rest = text.substr(colon + 1);
    if (label.source.empty()) fail("label \"{}\" has an empty source before ':'", text);
  } else {
    label.source = std::string(default_source);
  }
  size_t value_at = rest.find('=');
  if (value_at == std::string_view::npos) {
    label.key = std::string(rest);
  } else {
    label.key = std::string(rest.substr(0, value_at));
    label.value = std::string(rest.substr(value_at + 1));
  }
  if (label.key.empty()) fail("label \"{}\" has an empty key", text);
  return label;
}

bool matches(const Label& selector, const Label& label) {
  return selector.key == label.key && selector.value == label.value &&
         (selector.source == label.source || selector.source == kSourceAny);
}

bool LabelSet::has_match(const Label& selector) const {
  if (selector.source != kSourceAny) return contains(selector);
  return std::any_of(labels_.begin(), labels_.end(),
                     [&](const Label& label) { return matches(selector, label); });
}

bool LabelSet::all_from_source(std::string_view source) const {
  return !labels_.empty() && std::all_of(labels_.begin(), labels_.end(),
                                         [&](const Label& l) { return l.source == source; });
}

bool LabelSet::any_from_source(std::string_view source) const {
  return std::any_of(labels_.begin(), labels_.end(),
                     [&](const Label& l) { return l.source == source; });
}

std::string LabelSet::to_string() const {
  std::string text;
  for (const auto& label : labels_) {
    if (!text.empty()) text += ',';
    text += label.to_string();
  }
  return text;
}

LabelSet parse_label_set(std::string_view text) {
  LabelSet set;
  if (trim(text).empty()) return set;
  size_t start = 0;
  for (;;) {
    size_t comma = text.find(',', start);
    std::string_view item = trim(text.substr(start, comma == std::string_view::npos
                                                         ? std::string_view::npos
                                                         : comma - start));
    if (item.empty()) fail("label set \"{}\" has an empty label", text);
    set.insert(parse_label(item));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return set;
}

LabelSet pod_labels(const std::map<std::string, std::string>& pod_labels, const std::string& ns,
                    const std::map<std::string, std::string>& namespace_labels) {
  if (ns.empty()) fail("pod without a namespace");
  LabelSet set;
  const std::string k8s(kSourceK8s);
  for (const auto& [key, value] : pod_labels) {
    check_writable(key, value, "pod");
    set.insert({k8s, key, value});
  }
  check_writable(std::string(kPodNamespaceLabel), ns, "namespace");
  set.insert({k8s, std::string(kPodNamespaceLabel), ns});

  std::map<std::string, std::string> ns_labels = namespace_labels;
  ns_labels.emplace(std::string(kNamespaceNameLabel), ns);  // a manifest's own value wins
  for (const auto& [key, value] : ns_labels) {
    check_writable(key, value, "namespace");
    set.insert({k8s, std::string(kNamespaceLabelPrefix) + key, value});
  }
  return set;
}

void to_json(nlohmann::json& j, const Label& label) { j = label.to_string(); }

void from_json(const nlohmann::json& j, Label& label) {
  if (!j.is_string()) fail("label must be a string, got {}", j.dump());
  label = parse_label(j.get<std::string>());
}

void to_json(nlohmann::json& j, const LabelSet& labels) {
  j = nlohmann::json::array();
  for (const auto& label : labels) j.push_back(label.to_string());
}

void from_json(const nlohmann::json& j, LabelSet& labels) {
  if (!j.is_array()) fail("label set must be an array of strings, got {}", j.dump());
  LabelSet set;
  for (const auto& item : j) set.insert(item.get<Label>());
  labels = std::move(set);
}

}  // namespace pilus::identity
