// Parsing and matching of --label selectors; flow labels are parsed with identity::parse_label.
#include "observe/label_selector.h"

#include <algorithm>

#include "common/error.h"
#include "identity/labels.h"

namespace pilus::observe {

namespace {

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

LabelSelector LabelSelector::parse(std::string_view text) {
  LabelSelector sel;
  sel.text_ = std::string(text);
  auto bad = [&](std::string_view why) -> LabelSelector { fail("invalid label selector '{}': {}", text, why); };
  if (trim(text).empty()) return bad("empty");

  for (std::string_view raw : split_requirements(text)) {
    std::string_view req = trim(raw);
    if (req.empty()) return bad("empty requirement");
    Requirement r;
    std::string_view key;
    if (req.front() == '!') {
      r.op = Op::NotExists;
      key = trim(req.substr(1));
    } else if (size_t p = find_word(req, "notin"); p != std::string_view::npos) {
      r.op = Op::NotIn;
      key = trim(req.substr(0, p));
      req = trim(req.substr(p + 5));
    } else if (size_t q = find_word(req, "in"); q != std::string_view::npos) {
      r.op = Op::In;
      key = trim(req.substr(0, q));
      req = trim(req.substr(q + 2));
    } else if (size_t ne = req.find("!="); ne != std::string_view::npos) {
      r.op = Op::NotEquals;
      key = trim(req.substr(0, ne));
      r.values.emplace_back(trim(req.substr(ne + 2)));
    } else if (size_t eq = req.find('='); eq != std::string_view::npos) {
      r.op = Op::Equals;
      key = trim(req.substr(0, eq));
      std::string_view value = req.substr(eq + 1);
      if (!value.empty() && value.front() == '=') value.remove_prefix(1);
      r.values.emplace_back(trim(value));
    } else {
      key = req;
    }
    if (r.op == Op::In || r.op == Op::NotIn) {
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
    sel.requirements_.push_back(std::move(r));
  }
  return sel;
}

bool LabelSelector::matches(const std::vector<std::string>& labels) const {
  std::vector<identity::Label> parsed;
  parsed.reserve(labels.size());
  for (const auto& text : labels) {
    try {
      parsed.push_back(identity::parse_label(text));
    } catch (const Error&) {
      // A label the agent could not have written itself cannot be selected either.
    }
  }
  for (const auto& r : requirements_) {
    // The values of the labels with this key (and source, unless the selector says "any").
    std::vector<const std::string*> values;
    for (const auto& l : parsed) {
      if (l.key == r.key && (r.source == identity::kSourceAny || r.source == l.source)) values.push_back(&l.value);
    }
    auto any_in = [&](const std::vector<std::string>& wanted) {
      return std::any_of(values.begin(), values.end(), [&](const std::string* v) {
        return std::find(wanted.begin(), wanted.end(), *v) != wanted.end();
      });
    };
    bool ok = false;
    switch (r.op) {
      case Op::Exists: ok = !values.empty(); break;
      case Op::NotExists: ok = values.empty(); break;
      case Op::Equals:
      case Op::In: ok = any_in(r.values); break;
      // Kubernetes semantics: a missing key satisfies "!=" and "notin".
      case Op::NotEquals:
      case Op::NotIn: ok = !any_in(r.values); break;
    }
    if (!ok) return false;
  }
  return true;
}

}  // namespace pilus::observe
