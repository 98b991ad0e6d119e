// The HTTP rules that apply to one proxied connection, taken from the same
// resolved policy entries the datapath holds: the server's ingress entry for
// the client and the client's egress entry for the server. Both ends' policy
// applies whichever sent the connection to the proxy: each direction is first
// judged at L3/L4 as the datapath would judge it now (a deny or the default
// deny refuses the whole connection), then by its HTTP rules when its entries
// carry some. A request passes when every direction allows it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "endpoint/ipv4.h"
#include "policy/policy_resolver.h"
#include "policy/policy_rule.h"
#include "proxy/http_rules.h"

namespace pilus::proxy {

// What the datapath recorded about a connection it sent to the proxy (proxy_origin map).
struct ConnectionOrigin {
  endpoint::Ipv4 client_ip;
  uint16_t client_port = 0;
  endpoint::Ipv4 server_ip;
  uint16_t server_port = 0;
  uint32_t client_identity = 0;
  uint32_t server_identity = 0;
  uint16_t client_endpoint = 0;
  uint16_t server_endpoint = 0;  // 0: the server is not a local pod
  bool ingress = false;          // the server's ingress policy asked for the proxy
  bool egress = false;           // the client's egress policy asked for the proxy
};

struct RequestVerdict {
  bool allowed = false;
  bool connection_denied = false;  // L3/L4 no longer allows the connection: answer 403 and close it
  std::string policy;  // "namespace/name" of the policy whose rule decided, when one did
};

// Immutable once built: the proxy's sessions share it while the agent builds the next.
class ConnectionRules {
 public:
  RequestVerdict check(const HttpRequestView& request) const;
  // False when a direction denies the connection at L3/L4 (no request can pass).
  bool connection_allowed() const;

 private:
  friend class L7Policy;
  struct Direction {
    bool denied = false;     // a deny entry or the direction's default deny
    std::string deny_policy;  // the policy of the deny entry, when one decided
    bool allow_all = false;  // allowed by default, or a plain L4 allow covers it
    std::vector<std::pair<std::shared_ptr<const HttpRuleSet>, std::string>> rules;  // rule set, policy name
  };
  std::vector<Direction> directions_;
};

class L7Policy {
 public:
  L7Policy() = default;
  // Compiles every rule's HTTP rules once; throws pilus::Error on an invalid expression.
  L7Policy(policy::ResolvedPolicy resolved, const std::vector<policy::PolicyRule>& rules,
           std::map<endpoint::Ipv4Prefix, uint32_t> cidr_identities);

  ConnectionRules for_connection(const ConnectionOrigin& origin) const;
  size_t redirect_entries() const { return redirect_entries_; }  // policy entries with a proxy port

 private:
  uint32_t cidr_identity(endpoint::Ipv4 ip) const;
  void add_direction(ConnectionRules& out, uint16_t endpoint_id, uint8_t direction, uint32_t peer,
                     endpoint::Ipv4 peer_ip, uint16_t port, uint16_t peer_endpoint = 0) const;

  policy::ResolvedPolicy resolved_;
  std::vector<std::shared_ptr<const HttpRuleSet>> compiled_;  // by rule index; null without HTTP rules
  std::vector<std::string> policy_names_;                      // by rule index
  std::map<endpoint::Ipv4Prefix, uint32_t> cidr_identities_;
  size_t redirect_entries_ = 0;
};

}  // namespace pilus::proxy
