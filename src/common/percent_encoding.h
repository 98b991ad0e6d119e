// Percent-encoding of URL query components, shared by the API transport and
// the flow filters' query strings.
#pragma once

#include <string>
#include <string_view>

namespace pilus {

// Percent-encodes everything but unreserved characters, for building query strings.
std::string percent_encode(std::string_view s);
// Decodes %XX (malformed escapes are kept as they are); '+' becomes a space when plus_is_space.
std::string percent_decode(std::string_view s, bool plus_is_space = true);

}  // namespace pilus
