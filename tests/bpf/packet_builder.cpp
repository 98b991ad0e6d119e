// Serialises PacketBuilder's layers into a wire-format Ethernet frame.
#include "packet_builder.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "common/error.h"

namespace pilus::test {
namespace {

constexpr uint16_t ETHERTYPE_IPV4 = 0x0800;
constexpr uint16_t ETHERTYPE_ARP = 0x0806;
constexpr uint16_t ETHERTYPE_IPV6 = 0x86dd;
constexpr uint8_t PROTO_ICMP = 1;
constexpr uint8_t PROTO_TCP = 6;
constexpr uint8_t PROTO_UDP = 17;
constexpr uint8_t PROTO_NONE_V6 = 59;  // IPv6 "no next header"
constexpr uint8_t IPOPT_NOP = 1;
constexpr uint16_t IPV4_DF = 0x4000;
constexpr uint16_t IPV4_MF = 0x2000;

void put16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}

void put32(std::vector<uint8_t>& out, uint32_t v) {
  put16(out, static_cast<uint16_t>(v >> 16));
  put16(out, static_cast<uint16_t>(v));
}

void set16(std::vector<uint8_t>& out, size_t at, uint16_t v) {
  out[at] = static_cast<uint8_t>(v >> 8);
  out[at + 1] = static_cast<uint8_t>(v);
}

template <size_t N>
void append(std::vector<uint8_t>& out, const std::array<uint8_t, N>& bytes, size_t count = N) {
  out.insert(out.end(), bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(count));
}

std::array<uint8_t, 16> parse_address(int family, std::string_view text) {
  std::array<uint8_t, 16> out{};
  std::string s(text);
  if (inet_pton(family, s.c_str(), out.data()) != 1) fail("packet builder: bad address '{}'", s);
  return out;
}

}  // namespace

uint32_t ipv4_address(std::string_view text) {
  auto bytes = parse_address(AF_INET, text);
  uint32_t out;
  std::memcpy(&out, bytes.data(), sizeof(out));
  return out;
}

uint16_t internet_checksum(const std::vector<uint8_t>& bytes, size_t offset, size_t length) {
  size_t end = length == static_cast<size_t>(-1) ? bytes.size() : offset + length;
  uint32_t sum = 0;
  for (size_t i = offset; i < end; i += 2) {
    uint16_t word = static_cast<uint16_t>(bytes[i] << 8);
    if (i + 1 < end) word |= bytes[i + 1];
    sum += word;
  }
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

PacketBuilder& PacketBuilder::eth(const Mac& src, const Mac& dst) {
  has_eth_ = true;
  eth_src_ = src;
  eth_dst_ = dst;
  return *this;
}

PacketBuilder& PacketBuilder::ethertype(uint16_t type) {
  l3_ = L3::raw;
  ethertype_ = type;
  return *this;
}

PacketBuilder& PacketBuilder::arp(std::string_view sender_ip, std::string_view target_ip) {
  l3_ = L3::arp;
  ethertype_ = ETHERTYPE_ARP;
  saddr_ = parse_address(AF_INET, sender_ip);
  daddr_ = parse_address(AF_INET, target_ip);
  return *this;
}

PacketBuilder& PacketBuilder::ipv4(std::string_view saddr, std::string_view daddr) {
  l3_ = L3::ipv4;
  ethertype_ = ETHERTYPE_IPV4;
  saddr_ = parse_address(AF_INET, saddr);
  daddr_ = parse_address(AF_INET, daddr);
  return *this;
}

PacketBuilder& PacketBuilder::ipv6(std::string_view saddr, std::string_view daddr) {
  l3_ = L3::ipv6;
  ethertype_ = ETHERTYPE_IPV6;
  saddr_ = parse_address(AF_INET6, saddr);
  daddr_ = parse_address(AF_INET6, daddr);
  return *this;
}

PacketBuilder& PacketBuilder::ttl(uint8_t ttl) {
  ttl_ = ttl;
  return *this;
}

PacketBuilder& PacketBuilder::ip_id(uint16_t id) {
  ip_id_ = id;
  return *this;
}

PacketBuilder& PacketBuilder::dont_fragment() {
  frag_field_ |= IPV4_DF;
  return *this;
}

PacketBuilder& PacketBuilder::fragment(bool more_fragments, uint16_t offset_bytes) {
  if (offset_bytes % 8 != 0) fail("packet builder: fragment offset {} is not a multiple of 8", offset_bytes);
  frag_field_ = static_cast<uint16_t>((frag_field_ & IPV4_DF) | (more_fragments ? IPV4_MF : 0) | (offset_bytes / 8));
  return *this;
}

PacketBuilder& PacketBuilder::ip_options(uint8_t words) {
  if (words > 10) fail("packet builder: an IPv4 header holds at most 10 option words");
  option_words_ = words;
  return *this;
}

PacketBuilder& PacketBuilder::ihl(uint8_t words) {
  ihl_override_ = words;
  return *this;
}

PacketBuilder& PacketBuilder::ip_version(uint8_t version) {
  version_override_ = version;
  return *this;
}

PacketBuilder& PacketBuilder::tcp(uint16_t sport, uint16_t dport, uint8_t flags) {
  l4_ = L4::tcp;
  sport_ = sport;
  dport_ = dport;
  tcp_flags_ = flags;
  return *this;
}

PacketBuilder& PacketBuilder::udp(uint16_t sport, uint16_t dport) {
  l4_ = L4::udp;
  sport_ = sport;
  dport_ = dport;
  return *this;
}

PacketBuilder& PacketBuilder::icmp_echo(uint8_t type, uint16_t id, uint16_t seq) {
  l4_ = L4::icmp_echo;
  icmp_type_ = type;
  icmp_id_ = id;
  icmp_seq_ = seq;
  return *this;
}

PacketBuilder& PacketBuilder::ip_protocol(uint8_t protocol) {
  l4_ = L4::raw;
  raw_protocol_ = protocol;
  return *this;
}

PacketBuilder& PacketBuilder::payload(std::string_view bytes) {
  payload_.assign(bytes.begin(), bytes.end());
  return *this;
}

PacketBuilder& PacketBuilder::truncate(size_t total_bytes) {
  truncate_to_ = total_bytes;
  return *this;
}

uint8_t PacketBuilder::ip_protocol_number() const {
  switch (l4_) {
    case L4::tcp: return PROTO_TCP;
    case L4::udp: return PROTO_UDP;
    case L4::icmp_echo: return PROTO_ICMP;
    case L4::raw: return raw_protocol_;
    case L4::none: break;
  }
  return l3_ == L3::ipv6 ? PROTO_NONE_V6 : 0;
}

std::vector<uint8_t> PacketBuilder::pseudo_header(uint8_t protocol, size_t l4_length) const {
  std::vector<uint8_t> out;
  if (l3_ == L3::ipv4) {
    append(out, saddr_, 4);
    append(out, daddr_, 4);
    out.push_back(0);
    out.push_back(protocol);
    put16(out, static_cast<uint16_t>(l4_length));
  } else {
    append(out, saddr_);
    append(out, daddr_);
    put32(out, static_cast<uint32_t>(l4_length));
    out.insert(out.end(), {0, 0, 0, protocol});
  }
  return out;
}

std::vector<uint8_t> PacketBuilder::l4_bytes() const {
  std::vector<uint8_t> out;
  size_t checksum_at = 0;
  bool pseudo = true;
  switch (l4_) {
    case L4::none:
    case L4::raw:
      return payload_;
    case L4::tcp:
      put16(out, sport_);
      put16(out, dport_);
      put32(out, 1000);                                       // seq
      put32(out, (tcp_flags_ & tcp_flag::ACK) ? 2000 : 0);    // ack
      out.push_back(5 << 4);                                  // data offset: no options
      out.push_back(tcp_flags_);
      put16(out, 65535);                                      // window
      checksum_at = out.size();
      put16(out, 0);
      put16(out, 0);                                          // urgent pointer
      break;
    case L4::udp:
      put16(out, sport_);
      put16(out, dport_);
      put16(out, static_cast<uint16_t>(8 + payload_.size()));
      checksum_at = out.size();
      put16(out, 0);
      break;
    case L4::icmp_echo:
      if (l3_ == L3::ipv6) fail("packet builder: ICMPv6 is not modelled");
      out.push_back(icmp_type_);
      out.push_back(0);  // code
      checksum_at = out.size();
      put16(out, 0);
      put16(out, icmp_id_);
      put16(out, icmp_seq_);
      pseudo = false;  // ICMPv4 sums only its own message
      break;
  }
  out.insert(out.end(), payload_.begin(), payload_.end());

  std::vector<uint8_t> summed = pseudo ? pseudo_header(ip_protocol_number(), out.size()) : std::vector<uint8_t>{};
  summed.insert(summed.end(), out.begin(), out.end());
  uint16_t sum = internet_checksum(summed);
  if (l4_ == L4::udp && sum == 0) sum = 0xffff;  // 0 means "no checksum" in UDP
  set16(out, checksum_at, sum);
  return out;
}

std::vector<uint8_t> PacketBuilder::build() const {
  std::vector<uint8_t> l3;
  switch (l3_) {
    case L3::none:
      break;
    case L3::raw:
      l3 = payload_;
      break;
    case L3::arp:
      put16(l3, 1);               // hardware: Ethernet
      put16(l3, ETHERTYPE_IPV4);  // protocol
      l3.push_back(6);
      l3.push_back(4);
      put16(l3, 1);  // request
      append(l3, eth_src_);
      append(l3, saddr_, 4);
      append(l3, Mac{});
      append(l3, daddr_, 4);
      break;
    case L3::ipv4: {
      std::vector<uint8_t> l4 = l4_bytes();
      size_t header_len = 20 + 4u * option_words_;
      uint8_t ihl = ihl_override_.value_or(static_cast<uint8_t>(header_len / 4));
      uint8_t version = version_override_.value_or(4);
      l3.push_back(static_cast<uint8_t>((version << 4) | (ihl & 0x0f)));
      l3.push_back(0);  // DSCP/ECN
      put16(l3, static_cast<uint16_t>(header_len + l4.size()));
      put16(l3, ip_id_);
      put16(l3, frag_field_);
      l3.push_back(ttl_);
      l3.push_back(ip_protocol_number());
      put16(l3, 0);  // checksum, below
      append(l3, saddr_, 4);
      append(l3, daddr_, 4);
      l3.insert(l3.end(), 4u * option_words_, IPOPT_NOP);
      set16(l3, 10, internet_checksum(l3, 0, header_len));
      l3.insert(l3.end(), l4.begin(), l4.end());
      break;
    }
    case L3::ipv6: {
      std::vector<uint8_t> l4 = l4_bytes();
      put32(l3, 6u << 28);
      put16(l3, static_cast<uint16_t>(l4.size()));
      l3.push_back(ip_protocol_number());
      l3.push_back(ttl_);  // hop limit
      append(l3, saddr_);
      append(l3, daddr_);
      l3.insert(l3.end(), l4.begin(), l4.end());
      break;
    }
  }

  std::vector<uint8_t> frame;
  if (has_eth_) {
    append(frame, eth_dst_);
    append(frame, eth_src_);
    put16(frame, ethertype_);
  }
  frame.insert(frame.end(), l3.begin(), l3.end());
  if (truncate_to_) frame.resize(std::min(frame.size(), *truncate_to_));
  return frame;
}

}  // namespace pilus::test
