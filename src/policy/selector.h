// Label selectors (matchLabels + matchExpressions) as policies use them, evaluated against identity label sets.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "identity/labels.h"

namespace pilus::policy {

enum class SelectorOperator { kIn, kNotIn, kExists, kDoesNotExist };

// "In", "NotIn", "Exists", "DoesNotExist", as written in manifests.
std::string_view to_string(SelectorOperator op);

struct SelectorRequirement {
  std::string source;  // "k8s", "reserved", or "any" (a label of any source)
  std::string key;
  SelectorOperator op = SelectorOperator::kExists;
  std::vector<std::string> values;  // sorted and unique; empty for Exists and DoesNotExist

  bool operator==(const SelectorRequirement&) const = default;
};

// Every term must hold (AND); no terms at all selects every label set, as `{}` does.
// A term's source "any" lets it match a label of any source, as in Cilium.
struct LabelSelector {
  std::vector<identity::Label> match_labels;  // each label must be present with exactly this value
  std::vector<SelectorRequirement> match_expressions;

  bool matches(const identity::LabelSet& labels) const;
  bool empty() const { return match_labels.empty() && match_expressions.empty(); }

  // Whether a term is about `key` with a source that can select k8s labels (k8s or any);
  // this is how Cilium decides that a selector already names a namespace.
  bool names_key(std::string_view key) const;
  // The same for keys starting with `prefix` (e.g. the namespace-labels prefix).
  bool names_key_prefix(std::string_view prefix) const;
  // Whether a term has exactly this source (e.g. "reserved").
  bool uses_source(std::string_view source) const;

  // Kubernetes' selector syntax with sources: `k8s:app=web,any:tier in (a,b),k8s:x,!k8s:y`;
  // `{}` for the empty selector. Terms in stored order, so equal selectors print the same.
  std::string to_string() const;

  bool operator==(const LabelSelector&) const = default;
};

// Kubernetes' text syntax, as `kubectl -l` and `hubble observe --label` take it: comma-separated
// requirements, all of which must hold: key=value, key==value, key!=value, key (exists), !key,
// key in (a, b), key notin (a, b). A key may carry a source ("k8s:app", "reserved:world");
// without one it matches any source. Throws pilus::Error naming the selector on a syntax error.
LabelSelector parse_selector_text(std::string_view text);

}  // namespace pilus::policy
