#include "observe/label_selector.h"

#include "common/error.h"
#include "identity/labels.h"

namespace pilus::observe {

LabelSelector LabelSelector::parse(std::string_view text) {
  LabelSelector sel;
  sel.text_ = std::string(text);
  sel.selector_ = policy::parse_selector_text(text);
  return sel;
}

bool LabelSelector::matches(const std::vector<std::string>& labels) const {
  identity::LabelSet set;
  for (const auto& text : labels) {
    try {
      set.insert(identity::parse_label(text));
    } catch (const Error&) {
      // A label the agent could not have written itself cannot be selected either.
    }
  }
  return selector_.matches(set);
}

}  // namespace pilus::observe
