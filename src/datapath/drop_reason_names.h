// Names of drop reasons as Hubble prints them (drop_reason_desc), and the agent's texts.
#pragma once

#include <cstdint>
#include <string>

namespace pilus::datapath {

std::string drop_reason_name(uint8_t reason);

// The agent's text for a reason, as Cilium writes it ("Policy denied", "Policy denied by
// denylist"): cilium_drop_count_total's reason label and Hubble's compact output. pilus's own
// reasons get their own text; unknown numbers print as digits.
std::string drop_reason_text(uint8_t reason);

}  // namespace pilus::datapath
