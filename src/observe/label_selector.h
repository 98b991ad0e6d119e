// Label selectors for flow filters (--label): the policy selector, over the label strings a flow
// carries ("k8s:app=frontend", "reserved:world").
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "policy/selector.h"

namespace pilus::observe {

class LabelSelector {
 public:
  // Kubernetes selector syntax (see policy::parse_selector_text); throws pilus::Error naming it.
  static LabelSelector parse(std::string_view text);

  // Labels in Cilium's string form; labels that do not parse are ignored.
  bool matches(const std::vector<std::string>& labels) const;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  policy::LabelSelector selector_;
};

}  // namespace pilus::observe
