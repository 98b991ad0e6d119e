#include "proxy/l7_flow.h"

#include <fmt/format.h>

#include "abi/drop_reasons.h"

namespace pilus::proxy {

namespace {

observe::FlowEndpoint flow_endpoint(endpoint::Ipv4 ip, uint16_t port, uint32_t identity,
                                    const observe::EndpointResolver& resolver) {
  observe::FlowEndpoint ep;
  ep.ip = ip;
  ep.port = port;
  ep.identity = identity;
  if (auto info = resolver.by_ip(ip.value)) {
    ep.namespace_name = info->namespace_name;
    ep.pod_name = info->pod_name;
    ep.endpoint_id = info->endpoint_id;
    if (!ep.identity) ep.identity = info->identity;
  }
  ep.labels = resolver.labels_of(ep.identity);
  return ep;
}

// Hubble's latency text in summaries: "850us", "12ms", "1.5s".
std::string latency_text(std::chrono::nanoseconds ns) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(ns).count();
  if (us < 1000) return fmt::format("{}us", us);
  if (us < 1000000) return fmt::format("{}ms", us / 1000);
  return fmt::format("{:.1f}s", double(us) / 1e6);
}

}  // namespace

observe::Flow l7_flow(const HttpExchange& x, bool response, const observe::EndpointResolver& resolver,
                      const std::string& node_name) {
  observe::Flow f;
  f.time = response ? x.response_time : x.request_time;
  f.node_name = node_name;
  observe::FlowEndpoint client = flow_endpoint(x.origin.client_ip, x.origin.client_port, x.origin.client_identity, resolver);
  observe::FlowEndpoint server = flow_endpoint(x.origin.server_ip, x.origin.server_port, x.origin.server_identity, resolver);
  f.source = response ? server : client;
  f.destination = response ? client : server;
  f.l4.protocol = observe::L4Protocol::Tcp;
  f.direction = x.origin.ingress ? observe::TrafficDirection::Ingress : observe::TrafficDirection::Egress;
  f.kind = observe::EventKind::L7;
  f.is_reply = response;
  f.verdict = x.allowed ? observe::Verdict::Forwarded : observe::Verdict::Dropped;
  if (!x.allowed) f.drop_reason = DROP_POLICY_DENIED;
  if (!x.policy.empty()) f.policy_name = x.policy;
  observe::HttpInfo h;
  h.l7_type = response ? "RESPONSE" : "REQUEST";
  h.method = x.method;
  h.url = x.url;
  h.protocol = x.protocol;
  if (response) {
    h.code = x.status;
    h.latency_ns = static_cast<uint64_t>(x.latency.count());
    f.summary = fmt::format("{} {} {} ({} {})", x.protocol, x.status, latency_text(x.latency), x.method, x.url);
  } else {
    f.summary = fmt::format("{} {} {}", x.protocol, x.method, x.url);
  }
  f.http = std::move(h);
  return f;
}

}  // namespace pilus::proxy
