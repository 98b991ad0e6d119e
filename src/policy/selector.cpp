// Label selector evaluation and display.
#include "policy/selector.h"

#include <algorithm>

#include <fmt/format.h>

namespace pilus::policy {

namespace {

bool source_selects(std::string_view selector_source, const identity::Label& label) {
  return selector_source == identity::kSourceAny || selector_source == label.source;
}

// Sources whose terms can match a label Cilium derives from Kubernetes.
bool selects_k8s(std::string_view source) {
  return source == identity::kSourceK8s || source == identity::kSourceAny;
}

bool holds(const SelectorRequirement& r, const identity::LabelSet& labels) {
  bool key_present = false;
  bool value_listed = false;
  for (const identity::Label& label : labels) {
    if (label.key != r.key || !source_selects(r.source, label)) continue;
    key_present = true;
    if (std::binary_search(r.values.begin(), r.values.end(), label.value)) value_listed = true;
  }
  switch (r.op) {
    case SelectorOperator::kIn:
      return value_listed;
    case SelectorOperator::kNotIn:
      // As in Kubernetes: a missing key satisfies NotIn.
      return !value_listed;
    case SelectorOperator::kExists:
      return key_present;
    case SelectorOperator::kDoesNotExist:
      return !key_present;
  }
  return false;
}

std::string term_key(std::string_view source, std::string_view key) { return fmt::format("{}:{}", source, key); }

}  // namespace

std::string_view to_string(SelectorOperator op) {
  switch (op) {
    case SelectorOperator::kIn:
      return "In";
    case SelectorOperator::kNotIn:
      return "NotIn";
    case SelectorOperator::kExists:
      return "Exists";
    case SelectorOperator::kDoesNotExist:
      return "DoesNotExist";
  }
  return "?";
}

bool LabelSelector::matches(const identity::LabelSet& labels) const {
  for (const identity::Label& wanted : match_labels) {
    if (!labels.has_match(wanted)) return false;
  }
  return std::all_of(match_expressions.begin(), match_expressions.end(),
                     [&](const SelectorRequirement& r) { return holds(r, labels); });
}

bool LabelSelector::names_key(std::string_view key) const {
  return std::any_of(match_labels.begin(), match_labels.end(),
                     [&](const identity::Label& l) { return l.key == key && selects_k8s(l.source); }) ||
         std::any_of(match_expressions.begin(), match_expressions.end(),
                     [&](const SelectorRequirement& r) { return r.key == key && selects_k8s(r.source); });
}

bool LabelSelector::names_key_prefix(std::string_view prefix) const {
  return std::any_of(match_labels.begin(), match_labels.end(),
                     [&](const identity::Label& l) { return l.key.starts_with(prefix) && selects_k8s(l.source); }) ||
         std::any_of(match_expressions.begin(), match_expressions.end(),
                     [&](const SelectorRequirement& r) { return r.key.starts_with(prefix) && selects_k8s(r.source); });
}

bool LabelSelector::uses_source(std::string_view source) const {
  return std::any_of(match_labels.begin(), match_labels.end(), [&](const identity::Label& l) { return l.source == source; }) ||
         std::any_of(match_expressions.begin(), match_expressions.end(),
                     [&](const SelectorRequirement& r) { return r.source == source; });
}

std::string LabelSelector::to_string() const {
  if (empty()) return "{}";
  std::vector<std::string> terms;
  for (const identity::Label& l : match_labels) {
    // Reserved labels never carry values ("reserved:host"); for others keep the '=' so an
    // empty value cannot be read as an Exists term.
    if (l.value.empty() && l.source == identity::kSourceReserved) {
      terms.push_back(term_key(l.source, l.key));
    } else {
      terms.push_back(fmt::format("{}={}", term_key(l.source, l.key), l.value));
    }
  }
  for (const SelectorRequirement& r : match_expressions) {
    std::string key = term_key(r.source, r.key);
    switch (r.op) {
      case SelectorOperator::kIn:
        terms.push_back(fmt::format("{} in ({})", key, fmt::join(r.values, ",")));
        break;
      case SelectorOperator::kNotIn:
        terms.push_back(fmt::format("{} notin ({})", key, fmt::join(r.values, ",")));
        break;
      case SelectorOperator::kExists:
        terms.push_back(key);
        break;
      case SelectorOperator::kDoesNotExist:
        terms.push_back("!" + key);
        break;
    }
  }
  return fmt::format("{}", fmt::join(terms, ","));
}

}  // namespace pilus::policy
