// Test packets built layer by layer, lengths and checksums filled in, so a test states the packet it sends.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace pilus::test {

using Mac = std::array<uint8_t, 6>;

// Dotted-quad text as the network-order u32 that map keys and events carry.
uint32_t ipv4_address(std::string_view text);

// Bits of the TCP flags byte, as on the wire.
namespace tcp_flag {
inline constexpr uint8_t FIN = 0x01;
inline constexpr uint8_t SYN = 0x02;
inline constexpr uint8_t RST = 0x04;
inline constexpr uint8_t PSH = 0x08;
inline constexpr uint8_t ACK = 0x10;
}  // namespace tcp_flag

namespace icmp_type {
inline constexpr uint8_t ECHO_REPLY = 0;
inline constexpr uint8_t ECHO_REQUEST = 8;
}  // namespace icmp_type

// One Ethernet frame, described outside in (eth, then L3, then L4, then
// payload) and serialised by build(). Ports and ids are given in host order.
// Header fields that would make a packet malformed (ihl, version, truncation)
// are explicit overrides, so a valid packet is what you get by default.
class PacketBuilder {
 public:
  PacketBuilder& eth(const Mac& src, const Mac& dst);
  // An EtherType the builder does not model; what follows is payload().
  PacketBuilder& ethertype(uint16_t type);

  // ARP request (who-has target_ip), sender MAC taken from eth().
  PacketBuilder& arp(std::string_view sender_ip = "0.0.0.0", std::string_view target_ip = "0.0.0.0");
  PacketBuilder& ipv4(std::string_view saddr, std::string_view daddr);
  PacketBuilder& ipv6(std::string_view saddr, std::string_view daddr);

  // IPv4 header details; only meaningful after ipv4().
  PacketBuilder& ttl(uint8_t ttl);
  PacketBuilder& ip_id(uint16_t id);
  PacketBuilder& dont_fragment();
  // offset_bytes must be a multiple of 8, as the header stores 8-byte units.
  PacketBuilder& fragment(bool more_fragments, uint16_t offset_bytes);
  // `words` 4-byte rows of NOP options, growing the header beyond 20 bytes.
  PacketBuilder& ip_options(uint8_t words);
  // Malformed headers: these replace what build() would compute.
  PacketBuilder& ihl(uint8_t words);
  PacketBuilder& ip_version(uint8_t version);

  PacketBuilder& tcp(uint16_t sport, uint16_t dport, uint8_t flags);
  PacketBuilder& udp(uint16_t sport, uint16_t dport);
  PacketBuilder& icmp_echo(uint8_t type, uint16_t id, uint16_t seq);
  // An IP protocol the builder does not model (GRE, SCTP...): payload() only.
  PacketBuilder& ip_protocol(uint8_t protocol);

  PacketBuilder& payload(std::string_view bytes);
  // Cuts the finished frame to `total_bytes`; length fields keep the full size,
  // as a frame cut short on the wire would.
  PacketBuilder& truncate(size_t total_bytes);

  std::vector<uint8_t> build() const;

 private:
  enum class L3 { none, raw, arp, ipv4, ipv6 };
  enum class L4 { none, raw, tcp, udp, icmp_echo };

  std::vector<uint8_t> l4_bytes() const;
  std::vector<uint8_t> pseudo_header(uint8_t protocol, size_t l4_length) const;
  uint8_t ip_protocol_number() const;

  bool has_eth_ = false;
  Mac eth_src_{};
  Mac eth_dst_{};
  uint16_t ethertype_ = 0;

  L3 l3_ = L3::none;
  std::array<uint8_t, 16> saddr_{};
  std::array<uint8_t, 16> daddr_{};
  uint8_t ttl_ = 64;
  uint16_t ip_id_ = 0x1234;
  uint16_t frag_field_ = 0;  // flags and offset, host order
  uint8_t option_words_ = 0;
  std::optional<uint8_t> ihl_override_;
  std::optional<uint8_t> version_override_;

  L4 l4_ = L4::none;
  uint8_t raw_protocol_ = 0;
  uint16_t sport_ = 0;
  uint16_t dport_ = 0;
  uint8_t tcp_flags_ = 0;
  uint8_t icmp_type_ = 0;
  uint16_t icmp_id_ = 0;
  uint16_t icmp_seq_ = 0;

  std::vector<uint8_t> payload_;
  std::optional<size_t> truncate_to_;
};

// RFC 1071 ones'-complement checksum of `bytes`, as it goes into a header.
uint16_t internet_checksum(const std::vector<uint8_t>& bytes, size_t offset = 0,
                           size_t length = static_cast<size_t>(-1));

}  // namespace pilus::test
