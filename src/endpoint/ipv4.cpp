// Strict IPv4 address and prefix parsing and printing.
#include "endpoint/ipv4.h"

#include <arpa/inet.h>

#include "common/error.h"

namespace pilus::endpoint {

namespace {

// Parses a decimal number of at most max_digits digits without a leading zero; -1 when not one.
int parse_decimal(std::string_view text, size_t max_digits) {
  if (text.empty() || text.size() > max_digits) return -1;
  if (text.size() > 1 && text.front() == '0') return -1;
  int n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n;
}

}  // namespace

uint32_t Ipv4::network_order() const { return htonl(value); }

Ipv4 Ipv4::from_network_order(uint32_t be) { return Ipv4{ntohl(be)}; }

Ipv4 parse_ipv4(std::string_view text) {
  uint32_t value = 0;
  std::string_view rest = text;
  for (int part = 0; part < 4; ++part) {
    size_t dot = rest.find('.');
    if ((part < 3) != (dot != std::string_view::npos))
      fail("invalid IPv4 address \"{}\": expected four numbers separated by dots", text);
    int n = parse_decimal(rest.substr(0, dot), 3);
    if (n < 0 || n > 255)
      fail("invalid IPv4 address \"{}\": each part must be a number 0..255 without leading zeros",
           text);
    value = (value << 8) | static_cast<uint32_t>(n);
    if (dot != std::string_view::npos) rest = rest.substr(dot + 1);
  }
  return Ipv4{value};
}

Ipv4Prefix parse_ipv4_prefix(std::string_view text, bool allow_bare_address) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) {
    if (!allow_bare_address) fail("invalid IPv4 prefix \"{}\": expected address/length", text);
    return Ipv4Prefix{parse_ipv4(text), 32};
  }
  Ipv4 address;
  try {
    address = parse_ipv4(text.substr(0, slash));
  } catch (const Error& e) {
    fail("invalid IPv4 prefix \"{}\": {}", text, e.what());
  }
  int length = parse_decimal(text.substr(slash + 1), 2);
  if (length < 0 || length > 32)
    fail("invalid IPv4 prefix \"{}\": the length must be a number 0..32", text);
  return Ipv4Prefix{address, length};
}

std::string to_string(Ipv4 ip) {
  return fmt::format("{}.{}.{}.{}", ip.value >> 24, (ip.value >> 16) & 0xFF, (ip.value >> 8) & 0xFF,
                     ip.value & 0xFF);
}

std::string to_string(const Ipv4Prefix& prefix) {
  return to_string(prefix.address) + "/" + std::to_string(prefix.length);
}

}  // namespace pilus::endpoint
