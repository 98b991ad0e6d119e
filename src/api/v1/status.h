// GET /v1/status (`pilus status`) and GET /v1/healthz.
#pragma once

#include <optional>

#include "api/v1/schema.h"

namespace pilus::api::v1 {

struct Health {
  std::string health = "Ok";
};

void fields(auto& f, Is<Health> auto& h) { f("health", h.health); }

struct PolicyMapStatus {
  std::uint64_t entries = 0;
  std::uint64_t max_entries = 0;
  std::optional<std::string> last_refusal;  // the last apply refused for want of room, until one succeeds
};

void fields(auto& f, Is<PolicyMapStatus> auto& p) {
  f("entries", p.entries);
  f("maxEntries", p.max_entries);
  f("lastRefusal", p.last_refusal, Presence::kNullWhenEmpty);
}

// The L7 proxy: {"state": "disabled"}, or running with its address and counters.
struct ProxyStatus {
  std::string state;  // running, disabled
  std::optional<std::string> address;
  std::optional<std::uint64_t> redirect_entries, redirects, active_connections, requests, forwarded, denied,
      parse_errors, timeouts, upstream_errors, client_aborts, rejected_connections, rejected_per_identity,
      descriptors_exhausted, invalid_targets, invalid_framing;
};

void fields(auto& f, Is<ProxyStatus> auto& p) {
  constexpr auto kOmit = Presence::kOmitEmpty;
  f("state", p.state);
  f("address", p.address, kOmit);
  f("redirectEntries", p.redirect_entries, kOmit);
  f("redirects", p.redirects, kOmit);
  f("activeConnections", p.active_connections, kOmit);
  f("requests", p.requests, kOmit);
  f("forwarded", p.forwarded, kOmit);
  f("denied", p.denied, kOmit);
  f("parseErrors", p.parse_errors, kOmit);
  f("timeouts", p.timeouts, kOmit);
  f("upstreamErrors", p.upstream_errors, kOmit);
  f("clientAborts", p.client_aborts, kOmit);
  f("rejectedConnections", p.rejected_connections, kOmit);
  f("rejectedPerIdentity", p.rejected_per_identity, kOmit);
  f("descriptorsExhausted", p.descriptors_exhausted, kOmit);
  f("invalidTargets", p.invalid_targets, kOmit);
  f("invalidFraming", p.invalid_framing, kOmit);
}

struct ConntrackGcStatus {
  std::uint64_t runs = 0;
  std::uint64_t deleted = 0;
};

void fields(auto& f, Is<ConntrackGcStatus> auto& g) {
  f("runs", g.runs);
  f("deleted", g.deleted);
}

struct KernelFeatureStatus {
  std::string name;
  bool required = false;
  bool available = false;
};

void fields(auto& f, Is<KernelFeatureStatus> auto& k) {
  f("name", k.name);
  f("required", k.required);
  f("available", k.available);
}

struct MapPressure {
  std::string name;
  std::uint64_t entries = 0;
  std::uint64_t max_entries = 0;
  double pressure = 0;  // entries / maxEntries
};

void fields(auto& f, Is<MapPressure> auto& m) {
  f("name", m.name);
  f("entries", m.entries);
  f("maxEntries", m.max_entries);
  f("pressure", m.pressure);
}

struct Status {
  std::string health = "Ok";
  std::string kernel;
  std::int64_t uptime_seconds = 0;
  std::string pod_cidr;
  std::string router_ip;
  std::string bpf_root;
  std::string datapath;
  std::uint64_t endpoints = 0;
  std::uint64_t identities = 0;
  std::uint64_t policies = 0;
  PolicyMapStatus policy_map;
  std::string l7_policy;
  ProxyStatus proxy;
  std::string ipv6;
  std::uint64_t lost_events = 0;
  std::uint64_t observe_followers = 0;
  ConntrackGcStatus conntrack_gc;
  std::vector<KernelFeatureStatus> kernel_features;
  std::vector<MapPressure> maps;
};

void fields(auto& f, Is<Status> auto& s) {
  f("health", s.health);
  f("kernel", s.kernel);
  f("uptimeSeconds", s.uptime_seconds);
  f("podCIDR", s.pod_cidr);
  f("routerIP", s.router_ip);
  f("bpfRoot", s.bpf_root);
  f("datapath", s.datapath);
  f("endpoints", s.endpoints);
  f("identities", s.identities);
  f("policies", s.policies);
  f("policyMap", s.policy_map);
  f("l7Policy", s.l7_policy);
  f("proxy", s.proxy);
  f("ipv6", s.ipv6);
  f("lostEvents", s.lost_events);
  f("observeFollowers", s.observe_followers);
  f("conntrackGC", s.conntrack_gc);
  f("kernelFeatures", s.kernel_features);
  f("maps", s.maps);
}

}  // namespace pilus::api::v1
