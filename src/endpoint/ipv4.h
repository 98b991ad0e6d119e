// IPv4 addresses and prefixes as values, so an address is never confused with an identity or a port.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

namespace pilus::endpoint {

struct Ipv4 {
  uint32_t value = 0;  // host byte order, so arithmetic (network + 1) is plain addition

  // For map keys and socket addresses, which the BPF ABI keeps in network byte order.
  uint32_t network_order() const;
  static Ipv4 from_network_order(uint32_t be);

  auto operator<=>(const Ipv4&) const = default;
};

struct Ipv4Prefix {
  Ipv4 address;  // as written, host bits included
  int length = 0;

  uint32_t mask() const { return length == 0 ? 0 : ~uint32_t{0} << (32 - length); }
  Ipv4 network() const { return Ipv4{address.value & mask()}; }
  Ipv4 broadcast() const { return Ipv4{network().value | ~mask()}; }
  bool has_host_bits() const { return (address.value & ~mask()) != 0; }
  // The same prefix with the host bits cleared: 10.0.0.1/8 -> 10.0.0.0/8.
  Ipv4Prefix masked() const { return Ipv4Prefix{network(), length}; }
  bool contains(Ipv4 ip) const { return (ip.value & mask()) == network().value; }
  // 2^(32-length): every address of the prefix, network and broadcast included.
  uint64_t size() const { return uint64_t{1} << (32 - length); }

  auto operator<=>(const Ipv4Prefix&) const = default;
};

// Dotted quad, four decimal parts 0..255 without leading zeros (which some parsers read as
// octal). Throws pilus::Error saying what is wrong with the text.
Ipv4 parse_ipv4(std::string_view text);
// "a.b.c.d/len" with len 0..32; a bare address is a /32 when allow_bare_address is set.
// Host bits are kept: callers decide whether 10.0.0.1/8 is an error or means 10.0.0.0/8.
Ipv4Prefix parse_ipv4_prefix(std::string_view text, bool allow_bare_address = false);

std::string to_string(Ipv4 ip);
std::string to_string(const Ipv4Prefix& prefix);

}  // namespace pilus::endpoint
