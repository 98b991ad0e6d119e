// Label selector evaluation and display.
#include "policy/selector.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/error.h"

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


std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits on commas outside parentheses, so "app in (a,b),tier=db" has two requirements.
std::vector<std::string_view> split_requirements(std::string_view text) {
  std::vector<std::string_view> parts;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '(') ++depth;
    if (text[i] == ')') --depth;
    if (text[i] == ',' && depth == 0) {
      parts.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(text.substr(start));
  return parts;
}

// Finds " in " / " notin " as a whole word, returning its position or npos.
size_t find_word(std::string_view s, std::string_view word) {
  for (size_t pos = s.find(word); pos != std::string_view::npos; pos = s.find(word, pos + 1)) {
    bool left = pos > 0 && (s[pos - 1] == ' ' || s[pos - 1] == '\t');
    size_t end = pos + word.size();
    bool right = end < s.size() && (s[end] == ' ' || s[end] == '\t' || s[end] == '(');
    if (left && right) return pos;
  }
  return std::string_view::npos;
}

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

LabelSelector parse_selector_text(std::string_view text) {
  LabelSelector sel;
  auto bad = [&](std::string_view why) -> LabelSelector { fail("invalid label selector '{}': {}", text, why); };
  if (trim(text).empty()) return bad("empty");

  for (std::string_view raw : split_requirements(text)) {
    std::string_view req = trim(raw);
    if (req.empty()) return bad("empty requirement");
    SelectorRequirement r;
    std::string_view key;
    bool list = false;
    if (req.front() == '!') {
      r.op = SelectorOperator::kDoesNotExist;
      key = trim(req.substr(1));
    } else if (size_t p = find_word(req, "notin"); p != std::string_view::npos) {
      r.op = SelectorOperator::kNotIn, list = true;
      key = trim(req.substr(0, p));
      req = trim(req.substr(p + 5));
    } else if (size_t q = find_word(req, "in"); q != std::string_view::npos) {
      r.op = SelectorOperator::kIn, list = true;
      key = trim(req.substr(0, q));
      req = trim(req.substr(q + 2));
    } else if (size_t ne = req.find("!="); ne != std::string_view::npos) {
      r.op = SelectorOperator::kNotIn;  // Kubernetes: a missing key satisfies "!=" too
      key = trim(req.substr(0, ne));
      r.values.emplace_back(trim(req.substr(ne + 2)));
    } else if (size_t eq = req.find('='); eq != std::string_view::npos) {
      r.op = SelectorOperator::kIn;
      key = trim(req.substr(0, eq));
      std::string_view value = req.substr(eq + 1);
      if (!value.empty() && value.front() == '=') value.remove_prefix(1);
      r.values.emplace_back(trim(value));
    } else {
      r.op = SelectorOperator::kExists;
      key = req;
    }
    if (list) {
      if (req.size() < 2 || req.front() != '(' || req.back() != ')') return bad("expected a (value, ...) list");
      for (std::string_view v : split_requirements(req.substr(1, req.size() - 2))) {
        v = trim(v);
        if (v.empty()) return bad("empty value in list");
        r.values.emplace_back(v);
      }
    }
    if (key.empty()) return bad("empty key");
    if (key.find_first_of(" \t()=!,") != std::string_view::npos) return bad("bad key '" + std::string(key) + "'");
    // "source:key"; without a source any source matches (Cilium's selector convention).
    if (size_t colon = key.find(':'); colon != std::string_view::npos) {
      r.source = std::string(key.substr(0, colon));
      r.key = std::string(key.substr(colon + 1));
      if (r.source.empty() || r.key.empty()) return bad("bad key '" + std::string(key) + "'");
    } else {
      r.source = std::string(identity::kSourceAny);
      r.key = std::string(key);
    }
    std::sort(r.values.begin(), r.values.end());
    r.values.erase(std::unique(r.values.begin(), r.values.end()), r.values.end());
    sel.match_expressions.push_back(std::move(r));
  }
  return sel;
}

}  // namespace pilus::policy
