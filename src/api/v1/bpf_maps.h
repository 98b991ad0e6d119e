// GET /v1/bpf/*: the kernel maps as they are (`cilium bpf ... list`).
#pragma once

#include "api/v1/meta.h"

namespace pilus::api::v1 {

// /v1/bpf/ct: one conntrack entry. The list is streamed, a few hundred entries at a time.
struct ConntrackEntry {
  std::string source, destination;  // address:port
  std::string protocol;             // TCP, UDP, ICMP or the number
  std::string scope;                // egress, ingress
  std::uint64_t packets_forward = 0, bytes_forward = 0, packets_reply = 0, bytes_reply = 0;
  std::uint64_t expires = 0;  // monotonic seconds
  std::uint32_t source_identity = 0;
  bool closing = false, seen_reply = false;
};

void fields(auto& f, Is<ConntrackEntry> auto& e) {
  f("source", e.source);
  f("destination", e.destination);
  f("protocol", e.protocol);
  f("scope", e.scope);
  f("packetsForward", e.packets_forward);
  f("bytesForward", e.bytes_forward);
  f("packetsReply", e.packets_reply);
  f("bytesReply", e.bytes_reply);
  f("expires", e.expires);
  f("sourceIdentity", e.source_identity);
  f("closing", e.closing);
  f("seenReply", e.seen_reply);
}

using ConntrackList = List<ConntrackEntry>;

// The streamed conntrack list's text before and after its items.
inline std::string list_stream_open() { return std::string("{\"") + kItemsKey + "\":["; }
inline std::string list_stream_close() { return "]}\n"; }

// POST /v1/bpf/ct/gc
struct ConntrackGcResult {
  std::uint64_t deleted = 0;
};

void fields(auto& f, Is<ConntrackGcResult> auto& r) { f("deleted", r.deleted); }

// /v1/bpf/ipcache
struct IpcacheEntry {
  std::string prefix;
  std::uint32_t identity = 0;
  std::string kind;  // host, local-pod, cidr
};

void fields(auto& f, Is<IpcacheEntry> auto& e) {
  f("prefix", e.prefix);
  f("identity", e.identity);
  f("kind", e.kind);
}

using IpcacheList = List<IpcacheEntry>;

// /v1/bpf/endpoints: the endpoint map and the per-endpoint drop/forward counters.
struct BpfEndpoint {
  std::string ip;
  std::int64_t ifindex = 0;
  std::uint32_t identity = 0;
  std::uint16_t endpoint_id = 0;
};

void fields(auto& f, Is<BpfEndpoint> auto& e) {
  f("ip", e.ip);
  f("ifindex", e.ifindex);
  f("identity", e.identity);
  f("endpointID", e.endpoint_id);
}

struct EndpointCounter {
  std::uint16_t endpoint_id = 0;
  std::string reason;  // FORWARDED or a drop reason
  std::string direction;
  std::uint64_t packets = 0, bytes = 0;
};

void fields(auto& f, Is<EndpointCounter> auto& c) {
  f("endpointID", c.endpoint_id);
  f("reason", c.reason);
  f("direction", c.direction);
  f("packets", c.packets);
  f("bytes", c.bytes);
}

struct BpfEndpoints {
  std::vector<BpfEndpoint> items;
  std::vector<EndpointCounter> counters;
};

void fields(auto& f, Is<BpfEndpoints> auto& e) {
  f(kItemsKey, e.items);
  f("counters", e.counters);
}

// /v1/bpf/policy?pod=: one pod's policy map entries.
struct BpfPolicyEntry {
  std::string direction;
  std::uint32_t identity = 0;  // 0: any
  std::string labels;
  std::string port;     // "80/TCP", "ANY"
  std::string verdict;  // allow, deny, redirect, default-deny
  std::uint16_t proxy_port = 0;
  std::string rule;  // the policies that wrote it
};

void fields(auto& f, Is<BpfPolicyEntry> auto& e) {
  f("direction", e.direction);
  f("identity", e.identity);
  f("labels", e.labels);
  f("port", e.port);
  f("verdict", e.verdict);
  f("proxyPort", e.proxy_port);
  f("rule", e.rule);
}

struct DefaultDeny {
  bool ingress = false, egress = false;
};

void fields(auto& f, Is<DefaultDeny> auto& d) {
  f("ingress", d.ingress);
  f("egress", d.egress);
}

struct BpfPolicy {
  std::string pod;
  std::uint16_t endpoint_id = 0;
  DefaultDeny default_deny;
  std::vector<BpfPolicyEntry> items;
};

void fields(auto& f, Is<BpfPolicy> auto& p) {
  f("pod", p.pod);
  f("endpointID", p.endpoint_id);
  f("defaultDeny", p.default_deny);
  f(kItemsKey, p.items);
}

// /v1/bpf/lb: the load balancer's frontends and their backends' Maglev slots.
struct LbBackend {
  std::uint32_t id = 0;
  std::string address;
  std::uint16_t port = 0;
  std::string state;  // active, terminating
  std::uint64_t maglev_slots = 0;
};

void fields(auto& f, Is<LbBackend> auto& b) {
  f("id", b.id);
  f("address", b.address);
  f("port", b.port);
  f("state", b.state);
  f("maglev_slots", b.maglev_slots);
}

struct LbService {
  std::string service;  // namespace/name, "" when unknown
  std::string vip;
  std::uint16_t port = 0;
  std::string protocol;
  std::uint32_t service_id = 0;
  std::uint32_t backend_count = 0;
  std::string session_affinity;  // None, ClientIP
  std::uint64_t maglev_table_size = 0;
  std::vector<LbBackend> backends;
};

void fields(auto& f, Is<LbService> auto& s) {
  f("service", s.service);
  f("vip", s.vip);
  f("port", s.port);
  f("protocol", s.protocol);
  f("service_id", s.service_id);
  f("backend_count", s.backend_count);
  f("session_affinity", s.session_affinity);
  f("maglev_table_size", s.maglev_table_size);
  f("backends", s.backends);
}

struct BpfLb {
  std::uint64_t maglev_table_size = 0;
  std::string algorithm;  // maglev, random
  std::vector<LbService> services;
};

void fields(auto& f, Is<BpfLb> auto& l) {
  f("maglev_table_size", l.maglev_table_size);
  f("algorithm", l.algorithm);
  f("services", l.services);
}

}  // namespace pilus::api::v1
