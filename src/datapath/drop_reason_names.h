// Names of drop reasons as Hubble prints them (drop_reason_desc).
#pragma once

#include <cstdint>
#include <string>

namespace pilus::datapath {

std::string drop_reason_name(uint8_t reason);

}  // namespace pilus::datapath
