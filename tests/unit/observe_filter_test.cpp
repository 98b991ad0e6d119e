// FlowFilter: each hubble observe flag, OR within a flag, AND across flags, sides, --not, errors, query strings.
#include "observe/flow_filter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "observe/flow_time.h"
#include "observe/label_selector.h"
#include "unit/error_of.h"

namespace pilus::observe {
namespace {

using ::testing::HasSubstr;

using pilus::testing::error_of;

FlowEndpoint pod(const char* ns, const char* name, const char* ip, uint16_t port, uint32_t identity,
                 std::vector<std::string> labels) {
  FlowEndpoint ep;
  ep.namespace_name = ns;
  ep.pod_name = name;
  ep.ip = endpoint::parse_ipv4(ip);
  ep.port = port;
  ep.identity = identity;
  ep.labels = std::move(labels);
  return ep;
}

FlowEndpoint world(const char* ip, uint16_t port) {
  FlowEndpoint ep;
  ep.ip = endpoint::parse_ipv4(ip);
  ep.port = port;
  ep.identity = 2;
  ep.labels = {"reserved:world"};
  return ep;
}

const TimePoint kT0 = parse_rfc3339("2024-11-24T10:00:00Z");

Flow flow(std::string name, FlowEndpoint src, FlowEndpoint dst, L4Protocol proto, Verdict verdict, EventKind kind,
          TrafficDirection dir, int minute) {
  Flow f;
  f.summary = std::move(name);  // the test's name for the flow
  f.source = std::move(src);
  f.destination = std::move(dst);
  f.l4.protocol = proto;
  f.verdict = verdict;
  f.kind = kind;
  f.direction = dir;
  f.time = kT0 + std::chrono::minutes(minute);
  f.node_name = "node-1";
  return f;
}

std::vector<Flow> sample_flows() {
  auto frontend = [](uint16_t port) {
    return pod("default", "frontend-7d9c", "10.244.0.5", port, 1234, {"k8s:app=frontend", "k8s:tier=web"});
  };
  auto backend = [](uint16_t port) {
    return pod("default", "backend", "10.244.0.6", port, 5678, {"k8s:app=backend", "k8s:tier=api"});
  };
  std::vector<Flow> flows;
  // syn: frontend -> backend:80, forwarded TCP SYN, at 10:00
  Flow syn = flow("syn", frontend(41234), backend(80), L4Protocol::Tcp, Verdict::Forwarded, EventKind::Trace,
                  TrafficDirection::Egress, 0);
  syn.l4.tcp_flags.syn = true;
  syn.is_reply = false;
  flows.push_back(syn);
  // synack: the reply, backend:80 -> frontend, at 10:01
  Flow synack = flow("synack", backend(80), frontend(41234), L4Protocol::Tcp, Verdict::Forwarded, EventKind::Trace,
                     TrafficDirection::Ingress, 1);
  synack.l4.tcp_flags.syn = synack.l4.tcp_flags.ack = true;
  synack.is_reply = true;
  flows.push_back(synack);
  // dns: frontend -> 1.1.1.1:53 dropped (no route to the outside), at 10:02
  Flow dns = flow("dns", frontend(5353), world("1.1.1.1", 53), L4Protocol::Udp, Verdict::Dropped, EventKind::Drop,
                  TrafficDirection::Egress, 2);
  dns.drop_reason = 240;
  flows.push_back(dns);
  // denied: prod/api-1 -> backend:80 dropped by policy, at 10:03
  Flow denied = flow("denied", pod("prod", "api-1", "10.244.0.9", 33000, 4321, {"k8s:app=api"}), backend(80),
                     L4Protocol::Tcp, Verdict::Dropped, EventKind::Drop, TrafficDirection::Ingress, 3);
  denied.drop_reason = 133;
  denied.l4.tcp_flags.syn = true;
  denied.policies = {{"NetworkPolicy", "default", "allow-http", -1, ""}};
  flows.push_back(denied);
  // ping: backend -> frontend ICMP echo, at 10:04
  Flow ping = flow("ping", backend(0), frontend(0), L4Protocol::Icmpv4, Verdict::Forwarded, EventKind::Trace,
                   TrafficDirection::Egress, 4);
  ping.l4.icmp_type = 8;
  ping.trace_point = TracePoint::ToEndpoint;
  flows.push_back(ping);
  // http: frontend -> backend:80 GET /api/v1/items 200 (L7), at 10:05
  Flow http = flow("http", frontend(41234), backend(80), L4Protocol::Tcp, Verdict::Forwarded, EventKind::L7,
                   TrafficDirection::Ingress, 5);
  http.http = HttpInfo{"RESPONSE", "GET", "http://backend/api/v1/items?x=1", "HTTP/1.1", 200, 1500};
  http.policy_name = "default/allow-api";
  flows.push_back(http);
  // host: host -> backend:8080 forwarded to-host trace on another node, at 10:06
  FlowEndpoint host;
  host.ip = endpoint::parse_ipv4("192.168.1.1");
  host.port = 40000;
  host.identity = 1;
  host.labels = {"reserved:host"};
  Flow from_host = flow("host", host, backend(8080), L4Protocol::Tcp, Verdict::Forwarded, EventKind::Trace,
                        TrafficDirection::Ingress, 6);
  from_host.trace_point = TracePoint::ToHost;
  from_host.node_name = "node-2";
  flows.push_back(from_host);
  return flows;
}

// Names of the sample flows a filter keeps.
std::vector<std::string> kept(const FlowFilter& filter) {
  std::vector<std::string> names;
  for (const auto& f : sample_flows()) {
    if (filter.matches(f)) names.push_back(f.summary);
  }
  return names;
}

std::vector<std::string> kept(const std::vector<FilterArg>& args) { return kept(FlowFilter::parse(args, kT0)); }

using Names = std::vector<std::string>;
const Names kAll = {"syn", "synack", "dns", "denied", "ping", "http", "host"};

TEST(ObserveFilter, EmptyMatchesEverything) {
  EXPECT_TRUE(FlowFilter().empty());
  EXPECT_EQ(kept(FlowFilter()), kAll);
  EXPECT_TRUE(FlowFilter::parse({}).empty());
  EXPECT_FALSE(FlowFilter::parse({{"verdict", "DROPPED"}}).empty());
}

TEST(ObserveFilter, Pods) {
  // Either side; "name" means namespace default; names are prefixes.
  EXPECT_EQ(kept({{"pod", "default/frontend"}}), (Names{"syn", "synack", "dns", "ping", "http"}));
  EXPECT_EQ(kept({{"pod", "frontend"}}), (Names{"syn", "synack", "dns", "ping", "http"}));
  EXPECT_EQ(kept({{"pod", "front"}}), (Names{"syn", "synack", "dns", "ping", "http"}));
  EXPECT_EQ(kept({{"pod", "api-1"}}), Names{}) << "api-1 lives in prod, not default";
  EXPECT_EQ(kept({{"pod", "prod/api-1"}}), Names{"denied"});
  EXPECT_EQ(kept({{"pod", "prod/"}}), Names{"denied"});
  EXPECT_EQ(kept({{"from-pod", "default/frontend"}}), (Names{"syn", "dns", "http"}));
  EXPECT_EQ(kept({{"to-pod", "default/frontend"}}), (Names{"synack", "ping"}));
  EXPECT_EQ(kept({{"from-pod", "default/frontend"}, {"to-pod", "default/backend"}}), (Names{"syn", "http"}));
  // OR within the flag.
  EXPECT_EQ(kept({{"from-pod", "prod/api"}, {"from-pod", "default/backend"}}), (Names{"synack", "denied", "ping"}));
}

TEST(ObserveFilter, Namespaces) {
  EXPECT_EQ(kept({{"namespace", "prod"}}), Names{"denied"});
  EXPECT_EQ(kept({{"from-namespace", "default"}}), (Names{"syn", "synack", "dns", "ping", "http"}));
  EXPECT_EQ(kept({{"to-namespace", "default"}}), (Names{"syn", "synack", "denied", "ping", "http", "host"}));
  EXPECT_EQ(kept({{"namespace", "nowhere"}}), Names{});
}

TEST(ObserveFilter, Labels) {
  EXPECT_EQ(kept({{"label", "k8s:app=frontend"}}), (Names{"syn", "synack", "dns", "ping", "http"}));
  EXPECT_EQ(kept({{"label", "app=api"}}), Names{"denied"}) << "no source matches any source";
  EXPECT_EQ(kept({{"to-label", "reserved:world"}}), Names{"dns"});
  EXPECT_EQ(kept({{"from-label", "reserved:host"}}), Names{"host"});
  EXPECT_EQ(kept({{"from-label", "app=frontend,tier=web"}}), (Names{"syn", "dns", "http"}));
  EXPECT_EQ(kept({{"from-label", "app in (api, backend)"}}), (Names{"synack", "denied", "ping"}));
  EXPECT_EQ(kept({{"from-label", "tier notin (web)"}}), (Names{"synack", "denied", "ping", "host"}));
  EXPECT_EQ(kept({{"from-label", "!tier"}}), (Names{"denied", "host"}));
  EXPECT_EQ(kept({{"from-label", "tier"}}), (Names{"syn", "synack", "dns", "ping", "http"}));
  EXPECT_EQ(kept({{"from-label", "app!=frontend"}}), (Names{"synack", "denied", "ping", "host"}));
  EXPECT_EQ(kept({{"from-label", "cidr:app=frontend"}}), Names{}) << "a source in the selector must match";
  // OR across values of the flag.
  EXPECT_EQ(kept({{"from-label", "app=api"}, {"from-label", "reserved:host"}}), (Names{"denied", "host"}));
}

TEST(ObserveFilter, LabelSelectorSyntaxErrors) {
  for (const char* bad : {"", " ", "app in a", "app in ()", "=x", "a b=c", "k8s:=x", ",app=x"}) {
    EXPECT_THAT(error_of([&] { LabelSelector::parse(bad); }), HasSubstr("invalid label selector")) << bad;
  }
  EXPECT_THAT(error_of([] { FlowFilter::parse({{"label", "app in a"}}); }), HasSubstr("--label"));
  EXPECT_NO_THROW(LabelSelector::parse("k8s:io.kubernetes.pod.namespace==default"));
}

TEST(ObserveFilter, Addresses) {
  EXPECT_EQ(kept({{"ip", "10.244.0.9"}}), Names{"denied"});
  EXPECT_EQ(kept({{"to-ip", "1.1.1.0/24"}}), Names{"dns"});
  EXPECT_EQ(kept({{"from-ip", "192.168.0.0/16"}}), Names{"host"});
  EXPECT_EQ(kept({{"from-ip", "10.244.0.9"}, {"from-ip", "192.168.1.1"}}), (Names{"denied", "host"}));
  EXPECT_EQ(kept({{"ip", "10.244.0.0/24"}}).size(), 7u);
}

TEST(ObserveFilter, Ports) {
  EXPECT_EQ(kept({{"port", "53"}}), Names{"dns"});
  EXPECT_EQ(kept({{"to-port", "80"}}), (Names{"syn", "denied", "http"}));
  EXPECT_EQ(kept({{"from-port", "80"}}), Names{"synack"});
  EXPECT_EQ(kept({{"port", "8080"}, {"port", "53"}}), (Names{"dns", "host"}));
  EXPECT_EQ(kept({{"port", "0"}}), Names{}) << "ICMP has no ports";
}

TEST(ObserveFilter, EitherSideFlagsStayOnOneSide) {
  // "--pod frontend --port 80": frontend's own port 80. frontend never uses port 80 itself.
  EXPECT_EQ(kept({{"pod", "default/frontend"}, {"port", "80"}}), Names{});
  EXPECT_EQ(kept({{"pod", "default/backend"}, {"port", "80"}}), (Names{"syn", "synack", "denied", "http"}));
  EXPECT_EQ(kept({{"label", "app=backend"}, {"port", "8080"}}), Names{"host"});
}

TEST(ObserveFilter, IdentitiesVerdictsProtocolsTypes) {
  EXPECT_EQ(kept({{"from-identity", "4321"}}), Names{"denied"});
  EXPECT_EQ(kept({{"identity", "world"}}), Names{"dns"});
  EXPECT_EQ(kept({{"to-identity", "5678"}, {"to-identity", "world"}}),
            (Names{"syn", "dns", "denied", "http", "host"}));

  EXPECT_EQ(kept({{"verdict", "DROPPED"}}), (Names{"dns", "denied"}));
  EXPECT_EQ(kept({{"verdict", "dropped"}}), (Names{"dns", "denied"}));
  EXPECT_EQ(kept({{"verdict", "FORWARDED"}, {"verdict", "DROPPED"}}).size(), 7u);
  EXPECT_EQ(kept({{"verdict", "ERROR"}}), Names{});

  EXPECT_EQ(kept({{"protocol", "udp"}}), Names{"dns"});
  EXPECT_EQ(kept({{"protocol", "ICMP"}}), Names{"ping"});
  EXPECT_EQ(kept({{"protocol", "icmpv4"}}), Names{"ping"});
  EXPECT_EQ(kept({{"protocol", "http"}}), Names{"http"});
  EXPECT_EQ(kept({{"protocol", "tcp"}}), (Names{"syn", "synack", "denied", "http", "host"}));

  EXPECT_EQ(kept({{"type", "drop"}}), (Names{"dns", "denied"}));
  EXPECT_EQ(kept({{"type", "trace"}}), (Names{"syn", "synack", "ping", "host"}));
  EXPECT_EQ(kept({{"type", "trace:to-host"}}), Names{"host"});
  EXPECT_EQ(kept({{"type", "drop:133"}}), Names{"denied"});
  EXPECT_EQ(kept({{"type", "drop:NO_ROUTE_TO_OUTSIDE"}}), Names{"dns"});
  EXPECT_EQ(kept({{"type", "l7"}}), Names{"http"});
  EXPECT_EQ(kept({{"type", "1"}}), (Names{"dns", "denied"}));
  EXPECT_EQ(kept({{"type", "policy-verdict"}}), Names{});
  EXPECT_EQ(kept({{"type", "l7"}, {"type", "drop"}}), (Names{"dns", "denied", "http"}));
}

TEST(ObserveFilter, DropReasonsDirectionsNodesFlags) {
  EXPECT_EQ(kept({{"drop-reason", "POLICY_DENIED"}}), Names{"denied"});
  EXPECT_EQ(kept({{"drop-reason-desc", "no_route_to_outside"}}), Names{"dns"});
  EXPECT_EQ(kept({{"drop-reason", "240"}, {"drop-reason", "133"}}), (Names{"dns", "denied"}));

  EXPECT_EQ(kept({{"traffic-direction", "ingress"}}), (Names{"synack", "denied", "http", "host"}));
  EXPECT_EQ(kept({{"traffic-direction", "EGRESS"}}), (Names{"syn", "dns", "ping"}));

  EXPECT_EQ(kept({{"node-name", "node-2"}}), Names{"host"});
  EXPECT_EQ(kept({{"node-name", "node-*"}}).size(), 7u);

  EXPECT_EQ(kept({{"tcp-flags", "SYN"}}), (Names{"syn", "synack", "denied"}));
  EXPECT_EQ(kept({{"tcp-flags", "syn,ack"}}), Names{"synack"});
  EXPECT_EQ(kept({{"tcp-flags", "FIN"}, {"tcp-flags", "ACK"}}), Names{"synack"});
}

TEST(ObserveFilter, Http) {
  EXPECT_EQ(kept({{"http-method", "get"}}), Names{"http"});
  EXPECT_EQ(kept({{"http-method", "POST"}}), Names{});
  EXPECT_EQ(kept({{"http-status", "200"}}), Names{"http"});
  EXPECT_EQ(kept({{"http-status", "2+"}}), Names{"http"});
  EXPECT_EQ(kept({{"http-status", "20+"}}), Names{"http"});
  EXPECT_EQ(kept({{"http-status", "5+"}}), Names{});
  EXPECT_EQ(kept({{"http-path", "^/api/v[0-9]+/"}}), Names{"http"});
  EXPECT_EQ(kept({{"http-path", "x=1"}}), Names{}) << "the query is not part of the path";
  EXPECT_EQ(kept({{"http-url", "x=1"}}), Names{"http"});
}

// --policy: flows that name the policy (drop and verdict causes, and the L7 proxy's policy).
TEST(ObserveFilter, Policy) {
  EXPECT_EQ(kept({{"policy", "default/allow-http"}}), Names{"denied"});
  EXPECT_EQ(kept({{"policy", "allow-http"}}), Names{"denied"}) << "no namespace: any";
  EXPECT_EQ(kept({{"policy", "NetworkPolicy/default/allow-http"}}), Names{"denied"});
  EXPECT_EQ(kept({{"policy", "CiliumNetworkPolicy/default/allow-http"}}), Names{});
  EXPECT_EQ(kept({{"policy", "prod/allow-http"}}), Names{});
  EXPECT_EQ(kept({{"policy", "default/allow-api"}}), Names{"http"});
  EXPECT_EQ(kept({{"policy", "allow-http"}, {"policy", "allow-api"}}), (Names{"denied", "http"}));
  EXPECT_THAT(error_of([] { FlowFilter::parse({{"policy", "a/b/c/d"}}); }), HasSubstr("--policy"));
}

TEST(ObserveFilter, SinceAndUntil) {
  EXPECT_EQ(kept({{"since", "2024-11-24T10:05:00Z"}}), (Names{"http", "host"}));
  EXPECT_EQ(kept({{"until", "2024-11-24T10:01:00Z"}}), (Names{"syn", "synack"}));
  EXPECT_EQ(kept({{"since", "2024-11-24T10:02:00Z"}, {"until", "2024-11-24T10:03:00Z"}}), (Names{"dns", "denied"}));
  EXPECT_EQ(kept({{"since", "2024-11-24T11:02:00+01:00"}, {"until", "2024-11-24T10:03:00"}}),
            (Names{"dns", "denied"}));
  // Relative to now: the filter's now is 10:07 here.
  auto now = kT0 + std::chrono::minutes(7);
  EXPECT_EQ(kept(FlowFilter::parse({{"since", "2m"}}, now)), (Names{"http", "host"}));
  EXPECT_EQ(kept(FlowFilter::parse({{"until", "1h"}}, now)), Names{});
  EXPECT_EQ(FlowFilter::parse({{"since", "90s"}}, now).since(), now - std::chrono::seconds(90));
  EXPECT_THAT(error_of([] { FlowFilter::parse({{"since", "yesterday"}}); }), HasSubstr("--since"));
  EXPECT_THAT(error_of([] { FlowFilter::parse({{"not", ""}, {"since", "5m"}}); }), HasSubstr("--since"));
}

TEST(ObserveFilter, DifferentFlagsAnd) {
  EXPECT_EQ(kept({{"verdict", "DROPPED"}, {"protocol", "tcp"}}), Names{"denied"});
  EXPECT_EQ(kept({{"from-pod", "default/frontend"}, {"verdict", "FORWARDED"}, {"to-port", "80"}}),
            (Names{"syn", "http"}));
  EXPECT_EQ(kept({{"pod", "default/backend"}, {"verdict", "DROPPED"}}), Names{"denied"});
}

TEST(ObserveFilter, NotNegatesTheNextFilter) {
  EXPECT_EQ(kept({{"not", ""}, {"verdict", "FORWARDED"}}), (Names{"dns", "denied"}));
  EXPECT_EQ(kept({{"pod", "default/frontend"}, {"not", ""}, {"to-pod", "default/backend"}}),
            (Names{"synack", "dns", "ping"}));
  // --not --pod excludes the pod on either side.
  EXPECT_EQ(kept({{"not", ""}, {"pod", "default/frontend"}}), (Names{"denied", "host"}));
  // Two negated values of one flag: neither.
  EXPECT_EQ(kept({{"not", ""}, {"protocol", "tcp"}, {"not", ""}, {"protocol", "udp"}}), Names{"ping"});
  // Negated different flags form one exclusion (Hubble): DROPPED *and* UDP is excluded.
  EXPECT_EQ(kept({{"not", ""}, {"verdict", "DROPPED"}, {"not", ""}, {"protocol", "udp"}}),
            (Names{"syn", "synack", "denied", "ping", "http", "host"}));
  // The negation applies to one filter only.
  EXPECT_EQ(kept({{"not", ""}, {"verdict", "DROPPED"}, {"protocol", "udp"}}), Names{});
  EXPECT_EQ(kept({{"--not", ""}, {"--from-pod", "default/frontend"}}), (Names{"synack", "denied", "ping", "host"}));
}

TEST(ObserveFilter, Errors) {
  EXPECT_EQ(error_of([] { FlowFilter::parse({{"colour", "red"}}); }), "unknown filter --colour");
  EXPECT_THAT(error_of([] { FlowFilter::parse({{"port", "http"}}); }), HasSubstr("invalid --port value 'http'"));
  EXPECT_THAT(error_of([] { FlowFilter::parse({{"to-port", "65536"}}); }), HasSubstr("--to-port"));
  EXPECT_THAT(error_of([] { FlowFilter::parse({{"ip", "10.0.0.300"}}); }), HasSubstr("invalid --ip value"));
  EXPECT_THAT(error_of([] { FlowFilter::parse({{"from-ip", "10.0.0.0/33"}}); }), HasSubstr("--from-ip"));
  EXPECT_THAT(error_of([] { FlowFilter::parse({{"verdict", "ALLOWED"}}); }), HasSubstr("invalid --verdict value"));
  EXPECT_THAT(error_of([] { FlowFilter::parse({{"protocol", "sctp"}}); }), HasSubstr("--protocol"));
  EXPECT_THAT(error_of([] { FlowFilter::parse({{"type", "debug"}}); }), HasSubstr("--type"));
  EXPECT_THAT(error_of([] { FlowFilter::parse({{"type", "trace:sideways"}}); }), HasSubstr("sideways"));
  EXPECT_THAT(error_of([] { FlowFilter::parse({{"drop-reason", "BAD_LUCK"}}); }), HasSubstr("--drop-reason"));
  EXPECT_THAT(error_of([] { FlowFilter::parse({{"identity", "moon"}}); }), HasSubstr("--identity"));
  EXPECT_THAT(error_of([] { FlowFilter::parse({{"traffic-direction", "up"}}); }), HasSubstr("--traffic-direction"));
  EXPECT_THAT(error_of([] { FlowFilter::parse({{"tcp-flags", "SYN,XMAS"}}); }), HasSubstr("XMAS"));
  EXPECT_THAT(error_of([] { FlowFilter::parse({{"http-status", "99"}}); }), HasSubstr("--http-status"));
  EXPECT_THAT(error_of([] { FlowFilter::parse({{"http-path", "(["}}); }), HasSubstr("--http-path"));
  EXPECT_THAT(error_of([] { FlowFilter::parse({{"pod", ""}}); }), HasSubstr("--pod"));
  EXPECT_THAT(error_of([] { FlowFilter::parse({{"pod", "/x"}}); }), HasSubstr("--pod"));
  EXPECT_THAT(error_of([] { FlowFilter::parse({{"namespace", "a/b"}}); }), HasSubstr("--namespace"));
  EXPECT_THAT(error_of([] { FlowFilter::parse({{"not", ""}}); }), HasSubstr("--not must be followed"));
  EXPECT_THAT(error_of([] { FlowFilter::parse({{"not", ""}, {"not", ""}, {"pod", "a"}}); }), HasSubstr("consecutive"));
}

TEST(ObserveFilter, ConflictsAsHubble) {
  EXPECT_EQ(error_of([] { FlowFilter::parse({{"pod", "a"}, {"from-pod", "b"}}); }),
            "filters --pod and --from-pod cannot be combined");
  EXPECT_THAT(error_of([] { FlowFilter::parse({{"ip", "1.1.1.1"}, {"to-pod", "b"}}); }), HasSubstr("cannot be combined"));
  EXPECT_THAT(error_of([] { FlowFilter::parse({{"label", "a=b"}, {"to-label", "c=d"}}); }), HasSubstr("cannot be combined"));
  EXPECT_THAT(error_of([] { FlowFilter::parse({{"port", "1"}, {"from-port", "2"}}); }), HasSubstr("cannot be combined"));
  // Included and excluded parts are checked separately; from- and to- combine.
  EXPECT_NO_THROW(FlowFilter::parse({{"pod", "a"}, {"not", ""}, {"from-pod", "b"}}));
  EXPECT_NO_THROW(FlowFilter::parse({{"from-pod", "a"}, {"to-pod", "b"}, {"to-port", "80"}}));
}

TEST(ObserveFilter, FlagNamesAreForgiving) {
  EXPECT_EQ(kept({{"--from_pod", "default/frontend"}}), (Names{"syn", "dns", "http"}));
  EXPECT_EQ(kept({{"Verdict", "DROPPED"}}), (Names{"dns", "denied"}));
}

TEST(ObserveFilter, QueryMap) {
  std::map<std::string, std::vector<std::string>> q{
      {"from-pod", {"default/frontend", "default/backend"}}, {"not-verdict", {"DROPPED"}}, {"to_port", {"80"}}};
  EXPECT_EQ(kept(FlowFilter::from_query(q, kT0)), (Names{"syn", "http"}));
  EXPECT_EQ(error_of([] { FlowFilter::from_query({{"color", {"x"}}}); }), "unknown filter --color");
  EXPECT_THAT(error_of([] { FlowFilter::from_query({{"port", {"abc"}}}); }), HasSubstr("invalid --port value 'abc'"));
  EXPECT_THAT(error_of([] { FlowFilter::from_query({{"not", {""}}}); }), HasSubstr("not-<filter>"));
}

TEST(ObserveFilter, RawQueryStringKeepsOrder) {
  EXPECT_EQ(kept(FlowFilter::from_query_string("?pod=default%2Ffrontend&not&to-pod=default/backend", kT0)),
            (Names{"synack", "dns", "ping"}));
  EXPECT_EQ(kept(FlowFilter::from_query_string("not-verdict=FORWARDED", kT0)), (Names{"dns", "denied"}));
  EXPECT_EQ(kept(FlowFilter::from_query_string("from-label=app+in+(api,backend)&from-ip=10.244.0.0%2F24", kT0)),
            (Names{"synack", "denied", "ping"}));
  EXPECT_EQ(kept(FlowFilter::from_query_string("", kT0)), kAll);
  EXPECT_THAT(error_of([] { FlowFilter::from_query_string("verdict=DROPPED&not"); }), HasSubstr("--not"));
  EXPECT_THAT(error_of([] { FlowFilter::from_query_string("http-status=abc"); }), HasSubstr("--http-status"));
}

TEST(ObserveFilter, CommandLineSplitAndQueryRoundTrip) {
  auto split = split_filter_args({"observe", "--pod", "default/frontend", "--not", "--verdict=DROPPED", "--follow",
                                  "--last", "5", "-o", "json", "--label", "app in (a, b)"});
  EXPECT_EQ(split.filters, (std::vector<FilterArg>{{"pod", "default/frontend"},
                                                   {"not", ""},
                                                   {"verdict", "DROPPED"},
                                                   {"label", "app in (a, b)"}}));
  EXPECT_EQ(split.rest, (std::vector<std::string>{"observe", "--follow", "--last", "5", "-o", "json"}));
  EXPECT_THAT(error_of([] { split_filter_args({"--pod"}); }), HasSubstr("--pod needs a value"));
  EXPECT_TRUE(is_filter_flag("--to-port"));
  EXPECT_TRUE(is_filter_flag("not"));
  EXPECT_FALSE(is_filter_flag("follow"));

  std::string query = to_query_string(split.filters);
  EXPECT_EQ(query, "pod=default%2Ffrontend&not-verdict=DROPPED&label=app%20in%20%28a%2C%20b%29");
  auto a = FlowFilter::parse(split.filters, kT0);
  auto b = FlowFilter::from_query_string(query, kT0);
  for (const auto& f : sample_flows()) EXPECT_EQ(a.matches(f), b.matches(f)) << f.summary;
  EXPECT_THAT(error_of([] { to_query_string({{"not", ""}}); }), HasSubstr("--not"));
}

TEST(ObserveFilter, ObserveQuery) {
  auto req = parse_observe_query({{"last", {"20"}}, {"follow", {""}}, {"verdict", {"DROPPED"}}}, kT0);
  EXPECT_EQ(req.last, 20u);
  EXPECT_TRUE(req.follow);
  EXPECT_FALSE(req.all);
  EXPECT_EQ(kept(req.filter), (Names{"dns", "denied"}));

  auto plain = parse_observe_query({{"all", {"true"}}, {"follow", {"false"}}});
  EXPECT_FALSE(plain.last.has_value());
  EXPECT_TRUE(plain.all);
  EXPECT_FALSE(plain.follow);
  EXPECT_TRUE(plain.filter.empty());

  EXPECT_THAT(error_of([] { parse_observe_query({{"last", {"many"}}}); }), HasSubstr("last"));
  EXPECT_THAT(error_of([] { parse_observe_query({{"follow", {"maybe"}}}); }), HasSubstr("follow"));
  EXPECT_EQ(error_of([] { parse_observe_query({{"podd", {"x"}}}); }), "unknown filter --podd");
}

}  // namespace
}  // namespace pilus::observe
