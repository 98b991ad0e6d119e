// Cilium's `policy.cilium.io/proxy-visibility` pod annotation: L7 visibility without L7
// enforcement. "<Ingress/80/TCP/HTTP>,<Egress/8080/TCP/HTTP>" sends the pod's connections on
// those ports through the proxy, which lets every request pass and reports each as an L7 flow.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "policy/policy_rule.h"

namespace pilus::policy {

inline constexpr std::string_view kProxyVisibilityAnnotation = "policy.cilium.io/proxy-visibility";

struct VisibilityPort {
  Direction direction = Direction::kIngress;
  uint16_t port = 0;  // TCP
  bool operator==(const VisibilityPort&) const = default;
};

// Throws pilus::Error naming the bad item; pilus implements HTTP over TCP only.
std::vector<VisibilityPort> parse_proxy_visibility(std::string_view text);

}  // namespace pilus::policy
