// Which requests of a proxied connection pass: both ends' policy, judged at L3/L4 as the
// datapath judges it and then by each end's HTTP rules (issue 12: an egress HTTP rule must
// not bypass the server's ingress policy, and a policy that stops allowing the connection
// must never turn into allow-all).
#include <netinet/in.h>

#include <gtest/gtest.h>

#include "abi/endpoint.h"
#include "abi/metrics.h"
#include "abi/policy.h"
#include "proxy/l7_policy.h"

namespace pilus::proxy {
namespace {

constexpr uint16_t kClientEp = 7, kServerEp = 9;
constexpr uint32_t kClientId = 300, kServerId = 400, kBackendId = 500;

struct PolicyBuilder {
  policy::ResolvedPolicy resolved;
  std::vector<policy::PolicyRule> rules;

  // An entry of `ep` for `peer` (0: any) on 80/TCP; `http` non-empty makes it an L7 redirect.
  PolicyBuilder& entry(uint16_t ep, uint8_t dir, uint32_t peer, std::vector<policy::HttpRule> http = {},
                       bool deny = false) {
    policy_key key{};
    key.prefixlen = POLICY_PREFIX_FULL;
    key.endpoint_id = ep;
    key.direction = dir;
    key.identity = peer;
    key.protocol = IPPROTO_TCP;
    key.dport = htons(80);
    policy::ResolvedEntry& e = resolved.entries[key];
    policy::PolicyRule rule;
    rule.policy_name = "p" + std::to_string(rules.size());
    rule.policy_namespace = "ns";
    rule.http = http;
    e.rules.push_back(rules.size());
    rules.push_back(rule);
    if (!http.empty()) e.value.proxy_port = htons(15000);
    if (deny) e.value.flags |= POLICY_F_DENY;
    resolved.endpoints[ep].flags |= dir == METRIC_INGRESS ? ENDPOINT_F_INGRESS_ENFORCED : ENDPOINT_F_EGRESS_ENFORCED;
    return *this;
  }
  PolicyBuilder& enforce(uint16_t ep, uint8_t dir) {
    resolved.endpoints[ep].flags |= dir == METRIC_INGRESS ? ENDPOINT_F_INGRESS_ENFORCED : ENDPOINT_F_EGRESS_ENFORCED;
    return *this;
  }
  L7Policy build() const { return L7Policy(resolved, rules, {}); }
};

ConnectionOrigin egress_redirected() {
  ConnectionOrigin o;
  o.client_ip = endpoint::Ipv4{0x0af40005};
  o.server_ip = endpoint::Ipv4{0x0af40009};
  o.server_port = 80;
  o.client_identity = kClientId;
  o.server_identity = kServerId;
  o.client_endpoint = kClientEp;
  o.server_endpoint = kServerEp;
  o.egress = true;  // only the client's egress asked for the proxy
  return o;
}

RequestVerdict check(const L7Policy& p, const ConnectionOrigin& o, std::string_view method, std::string_view path) {
  HttpRequestView v;
  v.method = method;
  v.path = path;
  return p.for_connection(o).check(v);
}

const std::vector<policy::HttpRule> kAnyGet = {{"GET", "/.*", "", {}}};
const std::vector<policy::HttpRule> kGetApi = {{"GET", "/api/.*", "", {}}};

TEST(L7Policy, ClientEgressHttpRuleDoesNotBypassTheServersIngress) {
  // The server admits only the backend identity; the client's egress allows any GET to anyone.
  L7Policy p = PolicyBuilder().entry(kServerEp, METRIC_INGRESS, kBackendId).entry(kClientEp, METRIC_EGRESS, 0, kAnyGet).build();
  RequestVerdict v = check(p, egress_redirected(), "GET", "/anything");
  EXPECT_FALSE(v.allowed);
  EXPECT_TRUE(v.connection_denied) << "default deny at L3/L4: answer 403 and close";
  EXPECT_FALSE(p.for_connection(egress_redirected()).connection_allowed());
}

TEST(L7Policy, ServerAdmittingTheClientAtL4LeavesTheClientsHttpRules) {
  L7Policy p = PolicyBuilder().entry(kServerEp, METRIC_INGRESS, kClientId).entry(kClientEp, METRIC_EGRESS, 0, kAnyGet).build();
  EXPECT_TRUE(check(p, egress_redirected(), "GET", "/anything").allowed);
  RequestVerdict post = check(p, egress_redirected(), "POST", "/anything");
  EXPECT_FALSE(post.allowed);
  EXPECT_FALSE(post.connection_denied) << "an L7 deny keeps the connection";
  EXPECT_EQ(post.policy, "ns/p1");
}

TEST(L7Policy, BothEndsHttpRulesApply) {
  // The server's own L7 rules (GET /api/.*) and the client's (any GET) both judge each request.
  L7Policy p = PolicyBuilder().entry(kServerEp, METRIC_INGRESS, kClientId, kGetApi).entry(kClientEp, METRIC_EGRESS, 0, kAnyGet).build();
  EXPECT_TRUE(check(p, egress_redirected(), "GET", "/api/users").allowed);
  RequestVerdict admin = check(p, egress_redirected(), "GET", "/admin");
  EXPECT_FALSE(admin.allowed);
  EXPECT_EQ(admin.policy, "ns/p0") << "the server's rule refused it";
}

TEST(L7Policy, ServerWithoutPolicyAdmitsTheClient) {
  L7Policy p = PolicyBuilder().entry(kClientEp, METRIC_EGRESS, 0, kAnyGet).build();
  EXPECT_TRUE(check(p, egress_redirected(), "GET", "/x").allowed);
}

TEST(L7Policy, DenyEntryOnEitherEndRefusesTheConnection) {
  L7Policy server_denies = PolicyBuilder()
                               .entry(kServerEp, METRIC_INGRESS, 0, kAnyGet)
                               .entry(kServerEp, METRIC_INGRESS, kClientId, {}, true)
                               .build();
  ConnectionOrigin o = egress_redirected();
  o.ingress = true;
  RequestVerdict v = check(server_denies, o, "GET", "/x");
  EXPECT_TRUE(v.connection_denied);
  EXPECT_EQ(v.policy, "ns/p1") << "the deny's policy is named";
  L7Policy client_denied = PolicyBuilder().entry(kServerEp, METRIC_INGRESS, 0, kAnyGet).enforce(kClientEp, METRIC_EGRESS).build();
  EXPECT_TRUE(check(client_denied, o, "GET", "/x").connection_denied) << "the client's egress default deny";
}

TEST(L7Policy, PolicyThatNoLongerAllowsTheClientIsNeverAllowAll) {
  ConnectionOrigin o = egress_redirected();
  o.egress = false;
  o.ingress = true;
  L7Policy before = PolicyBuilder().entry(kServerEp, METRIC_INGRESS, kClientId, kGetApi).build();
  EXPECT_TRUE(check(before, o, "GET", "/api/x").allowed);
  EXPECT_FALSE(check(before, o, "GET", "/admin").allowed);
  // Replaced by a policy that admits another identity only: the entry set for this client is empty.
  L7Policy after = PolicyBuilder().entry(kServerEp, METRIC_INGRESS, kBackendId, kGetApi).build();
  RequestVerdict admin = check(after, o, "GET", "/admin");
  EXPECT_FALSE(admin.allowed);
  EXPECT_TRUE(admin.connection_denied);
  EXPECT_FALSE(check(after, o, "GET", "/api/x").allowed);
  // The L7 rule dropped but the port still allowed at L4: requests pass, as a new connection would.
  L7Policy l4 = PolicyBuilder().entry(kServerEp, METRIC_INGRESS, kClientId).build();
  EXPECT_TRUE(check(l4, o, "GET", "/admin").allowed);
}

}  // namespace
}  // namespace pilus::proxy
