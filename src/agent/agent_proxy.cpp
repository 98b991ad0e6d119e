// The agent's side of the L7 proxy: starting it on the node's address,
// telling the datapath where it listens, answering its origin lookups from
// the proxy_origin map, handing it each new policy, and turning what it
// reports into flows and metrics.
#include <arpa/inet.h>

#include <spdlog/spdlog.h>

#include "agent/agent.h"
#include "proxy/l7_flow.h"
#include "proxy/l7_policy.h"

namespace pilus::agent {

void Agent::start_proxy() {
  proxy::ProxyConfig pc;
  pc.listen_ip = ipam_.router_ip();
  pc.max_connections = config_.proxy_max_connections;
  pc.max_connections_per_identity = config_.proxy_max_connections_per_identity;
  proxy::HttpProxy::Hooks hooks;
  hooks.origin = [this](endpoint::Ipv4 client, uint16_t client_port,
                        uint16_t proxy_port) -> std::optional<proxy::ConnectionOrigin> {
    auto v = proxy_maps_->origin(client, client_port, proxy_port);
    if (!v) return std::nullopt;
    proxy::ConnectionOrigin o;
    o.client_ip = client;
    o.client_port = client_port;
    o.server_ip = endpoint::Ipv4::from_network_order(v->orig_daddr);
    o.server_port = ntohs(v->orig_dport);
    o.client_identity = v->src_identity;
    o.server_identity = v->dst_identity;
    o.client_endpoint = v->src_endpoint_id;
    o.server_endpoint = v->dst_endpoint_id;
    o.ingress = v->flags & PROXY_F_INGRESS;
    o.egress = v->flags & PROXY_F_EGRESS;
    return o;
  };
  hooks.report = [this](const proxy::HttpExchange& x, bool response) {
    http_metrics_.observe(x, response);
    if (response && !x.responded) return;
    observe::Flow flow = proxy::l7_flow(x, response, endpoint_index_, config_.node_name);
    flow_metrics_.observe(flow);  // L7 flows count in hubble_flows_processed_total like the datapath's
    flow_ring_->push(std::move(flow));
  };
  proxy_ = std::make_unique<proxy::HttpProxy>(pc, std::move(hooks));
  // The datapath redirects only once it knows where the proxy is.
  proxy_maps_->set_proxy_address(pc.listen_ip);
  spdlog::info("L7 proxy listening on {}:{}", endpoint::to_string(pc.listen_ip), proxy_->port());
}

void Agent::update_proxy_policy() {
  if (proxy_)
    proxy_->set_policy(std::make_shared<proxy::L7Policy>(policy_controller_->resolved(), policy_controller_->rules(),
                                                         policy_controller_->cidr_identities()));
}

api::v1::ProxyStatus Agent::proxy_status() const {
  if (!proxy_) return {"disabled"};
  proxy::ProxyStats s = proxy_->stats();
  auto policy = proxy_->policy();
  return {"running",
          endpoint::to_string(proxy_->config().listen_ip) + ":" + std::to_string(proxy_->port()),
          policy ? policy->redirect_entries() : 0,
          s.connections,
          s.active_connections,
          s.requests,
          s.forwarded,
          s.denied,
          s.parse_errors,
          s.timeouts,
          s.upstream_errors,
          s.client_aborts,
          s.rejected_connections,
          s.identity_rejected,
          s.descriptors_exhausted,
          s.invalid_targets,
          s.invalid_framing};
}

}  // namespace pilus::agent
