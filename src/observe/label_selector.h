// Label selectors for flow filters (--label): Kubernetes selector syntax over Cilium "source:key" labels.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pilus::observe {

// A comma-separated list of requirements, all of which must hold:
//   key=value, key==value, key!=value, key (exists), !key (does not exist),
//   key in (a, b), key notin (a, b)
// A key may carry a source ("k8s:app", "reserved:world"); without one it matches any source, as in
// Cilium ("app=x" matches "k8s:app=x").
class LabelSelector {
 public:
  // Throws pilus::Error naming the selector on a syntax error.
  static LabelSelector parse(std::string_view text);

  // Labels in Cilium's string form; labels that do not parse are ignored.
  bool matches(const std::vector<std::string>& labels) const;
  const std::string& text() const { return text_; }

 private:
  enum class Op { Exists, NotExists, Equals, NotEquals, In, NotIn };
  struct Requirement {
    std::string source;  // "any" when the selector gave none
    std::string key;
    Op op = Op::Exists;
    std::vector<std::string> values;
  };

  std::string text_;
  std::vector<Requirement> requirements_;
};

}  // namespace pilus::observe
