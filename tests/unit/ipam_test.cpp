// Ipam and IPv4 helpers: router address, allocation order, exhaustion, restore, invalid CIDRs.
#include "endpoint/ipam.h"
#include "endpoint/ipv4.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "unit/error_of.h"

namespace pilus::endpoint {
namespace {

using ::testing::HasSubstr;

using pilus::testing::error_of;

Ipv4 ip(std::string_view text) { return parse_ipv4(text); }

TEST(Ipv4, ParseAndPrint) {
  EXPECT_EQ(ip("10.244.0.1").value, 0x0AF40001u);
  EXPECT_EQ(to_string(Ipv4{0x0AF40001u}), "10.244.0.1");
  EXPECT_EQ(to_string(ip("0.0.0.0")), "0.0.0.0");
  EXPECT_EQ(to_string(ip("255.255.255.255")), "255.255.255.255");
  EXPECT_EQ(Ipv4::from_network_order(ip("1.2.3.4").network_order()), ip("1.2.3.4"));
  const uint32_t be = ip("1.2.3.4").network_order();
  EXPECT_EQ(reinterpret_cast<const uint8_t*>(&be)[0], 1);
}

TEST(Ipv4, RejectsMalformedAddresses) {
  for (const char* text : {"", "1.2.3", "1.2.3.4.5", "256.0.0.1", "01.2.3.4", "1..3.4", "a.b.c.d",
                           "1.2.3.4 ", "-1.2.3.4", "1.2.3.4/24"}) {
    EXPECT_THAT(error_of([&] { parse_ipv4(text); }), HasSubstr("invalid IPv4 address")) << text;
  }
}

TEST(Ipv4, Prefixes) {
  Ipv4Prefix p = parse_ipv4_prefix("10.1.2.3/8");
  EXPECT_TRUE(p.has_host_bits());
  EXPECT_EQ(to_string(p), "10.1.2.3/8");
  EXPECT_EQ(to_string(p.masked()), "10.0.0.0/8");
  EXPECT_EQ(to_string(p.broadcast()), "10.255.255.255");
  EXPECT_TRUE(p.contains(ip("10.9.9.9")));
  EXPECT_FALSE(p.contains(ip("11.0.0.0")));
  EXPECT_EQ(parse_ipv4_prefix("0.0.0.0/0").size(), uint64_t{1} << 32);
  EXPECT_TRUE(parse_ipv4_prefix("0.0.0.0/0").contains(ip("8.8.8.8")));
  EXPECT_EQ(parse_ipv4_prefix("1.2.3.4", true), (Ipv4Prefix{ip("1.2.3.4"), 32}));
  EXPECT_THAT(error_of([] { parse_ipv4_prefix("1.2.3.4"); }), HasSubstr("address/length"));
  EXPECT_THAT(error_of([] { parse_ipv4_prefix("1.2.3.0/33"); }), HasSubstr("0..32"));
  EXPECT_THAT(error_of([] { parse_ipv4_prefix("1.2.3.0/"); }), HasSubstr("0..32"));
}

TEST(Ipam, RouterIsTheFirstAddressAndPodsFollow) {
  Ipam ipam("10.244.0.0/24");
  EXPECT_EQ(ipam.cidr(), "10.244.0.0/24");
  EXPECT_EQ(to_string(ipam.router_ip()), "10.244.0.1");
  EXPECT_EQ(ipam.capacity(), 253u);
  EXPECT_EQ(ipam.available(), 253u);
  EXPECT_EQ(to_string(ipam.allocate()), "10.244.0.2");
  EXPECT_EQ(to_string(ipam.allocate()), "10.244.0.3");
  EXPECT_EQ(to_string(ipam.allocate()), "10.244.0.4");
  EXPECT_EQ(ipam.available(), 250u);
  EXPECT_TRUE(ipam.is_allocated(ip("10.244.0.3")));
  EXPECT_FALSE(ipam.is_allocated(ipam.router_ip()));
  EXPECT_TRUE(ipam.contains(ip("10.244.0.200")));
  EXPECT_TRUE(ipam.contains(ipam.router_ip()));
  EXPECT_FALSE(ipam.contains(ip("10.244.1.2")));
}

TEST(Ipam, ExhaustionSaysHowManyAddresses) {
  Ipam ipam("10.244.0.0/28");
  std::vector<std::string> given;
  for (size_t i = 0; i < 13; ++i) given.push_back(to_string(ipam.allocate()));
  EXPECT_EQ(given.front(), "10.244.0.2");
  EXPECT_EQ(given.back(), "10.244.0.14");  // .15 is the broadcast address
  EXPECT_EQ(ipam.available(), 0u);
  EXPECT_EQ(error_of([&] { ipam.allocate(); }),
            "pod CIDR 10.244.0.0/28 is exhausted: all 13 addresses are in use");
}

TEST(Ipam, ReleasedAddressesAreReusedLowestFirst) {
  Ipam ipam("10.244.0.0/24");
  for (int i = 0; i < 5; ++i) ipam.allocate();  // .2 .. .6
  ipam.release(ip("10.244.0.5"));
  ipam.release(ip("10.244.0.3"));
  EXPECT_EQ(ipam.available(), 250u);
  EXPECT_EQ(to_string(ipam.allocate()), "10.244.0.3");
  EXPECT_EQ(to_string(ipam.allocate()), "10.244.0.5");
  EXPECT_EQ(to_string(ipam.allocate()), "10.244.0.7");
  EXPECT_THAT(error_of([&] { ipam.release(ip("10.244.0.100")); }), HasSubstr("not allocated"));
  EXPECT_THAT(error_of([&] { ipam.release(ip("10.244.0.100")); }), HasSubstr("10.244.0.100"));
}

TEST(Ipam, AllocateSpecificForRestore) {
  Ipam ipam("10.244.0.0/24");
  ipam.allocate_specific(ip("10.244.0.3"));
  ipam.allocate_specific(ip("10.244.0.254"));
  // allocate() fills the gap below the restored address and skips it.
  EXPECT_EQ(to_string(ipam.allocate()), "10.244.0.2");
  EXPECT_EQ(to_string(ipam.allocate()), "10.244.0.4");
  EXPECT_EQ(ipam.allocated(), (std::vector<Ipv4>{ip("10.244.0.2"), ip("10.244.0.3"),
                                                 ip("10.244.0.4"), ip("10.244.0.254")}));

  struct Case {
    const char* address;
    const char* error;
  };
  const Case cases[] = {
      {"10.244.0.3", "10.244.0.3 is already allocated"},
      {"10.244.1.3", "10.244.1.3 is not in pod CIDR 10.244.0.0/24"},
      {"10.244.0.0", "network address"},
      {"10.244.0.255", "broadcast address"},
      {"10.244.0.1", "router address"},
  };
  for (const auto& c : cases)
    EXPECT_THAT(error_of([&] { ipam.allocate_specific(ip(c.address)); }), HasSubstr(c.error))
        << c.address;
  EXPECT_EQ(ipam.available(), 249u);
}

TEST(Ipam, InvalidCidrsSayWhy) {
  struct Case {
    const char* cidr;
    const char* error;
  };
  const Case cases[] = {
      {"10.244.0.0", "expected address/length"},
      {"10.244.0/24", "invalid IPv4 address"},
      {"banana", "banana"},
      {"10.244.0.0/33", "0..32"},
      {"10.244.0.1/24", "host bits are set (did you mean 10.244.0.0/24?)"},
      {"10.0.0.0/7", "/7 is too large"},
      {"10.244.0.0/29", "/29 leaves too few pod addresses"},
  };
  for (const auto& c : cases) {
    std::string error = error_of([&] { Ipam ipam(c.cidr); });
    EXPECT_THAT(error, HasSubstr(c.error)) << c.cidr;
    EXPECT_THAT(error, HasSubstr("pod CIDR")) << c.cidr;
  }
  // The extremes that are allowed.
  EXPECT_EQ(Ipam("10.0.0.0/8").capacity(), (1u << 24) - 3);
  EXPECT_EQ(Ipam("10.0.0.16/28").capacity(), 13u);
}

}  // namespace
}  // namespace pilus::endpoint
