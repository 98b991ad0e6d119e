#include "common/capabilities.h"

#include <sys/capability.h>

#include <algorithm>
#include <cctype>

namespace pilus {

std::optional<int> capability_number(std::string_view name) {
  std::string lower;
  for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!lower.starts_with("cap_")) lower = "cap_" + lower;
  cap_value_t cap = 0;
  // libcap also parses plain numbers: Kubernetes names capabilities, never numbers.
  if (lower.size() <= 4 || std::isdigit(static_cast<unsigned char>(lower[4]))) return std::nullopt;
  if (cap_from_name(lower.c_str(), &cap) != 0) return std::nullopt;
  if (cap < 0 || cap > static_cast<int>(cap_max_bits()) - 1) return std::nullopt;
  return cap;
}

std::string capability_name(int cap) {
  char* text = cap_to_name(cap);
  std::string name = text ? text : std::to_string(cap);
  cap_free(text);
  if (name.starts_with("cap_")) name = name.substr(4);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::toupper(c); });
  return name;
}

std::vector<int> all_capabilities() {
  std::vector<int> caps;
  for (int c = 0; c < static_cast<int>(cap_max_bits()); c++) caps.push_back(c);
  return caps;
}

std::vector<int> default_capabilities() {
  std::vector<int> caps = {CAP_CHOWN,  CAP_DAC_OVERRIDE, CAP_FSETID,           CAP_FOWNER,     CAP_SETGID, CAP_SETUID,
                           CAP_SETFCAP, CAP_SETPCAP,     CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT, CAP_KILL,   CAP_AUDIT_WRITE};
  std::sort(caps.begin(), caps.end());
  return caps;
}

}  // namespace pilus
