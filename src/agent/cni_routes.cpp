// The API routes pilus-cni calls. Bodies: {"containerID", "netns", "ifName", "namespace", "name",
// "labels": {k: v}}; add answers the CNI result (interfaces, ips, routes, dns) the plugin prints.
#include "agent/cni_routes.h"

#include "api/json_body.h"

namespace pilus::agent {

namespace {

Agent::CniRequest cni_request(std::string&& body) {
  nlohmann::json j;
  api::JsonField root = api::parse_json_body(std::move(body), j);
  Agent::CniRequest r;
  r.container_id = root.at("containerID").string();
  if (root.has("netns")) r.netns_path = root.at("netns").string();
  r.if_name = root.has("ifName") ? root.at("ifName").string() : "eth0";
  r.ns = root.has("namespace") ? root.at("namespace").string() : "default";
  r.name = root.at("name").string();
  if (root.has("labels")) {
    if (!root.at("labels").value().is_object()) api::JsonField(j["labels"], "labels").string();  // names the type error
    for (const auto& [k, v] : j["labels"].items()) r.labels[k] = api::JsonField(v, "labels." + k).string();
  }
  return r;
}

}  // namespace

void register_cni_routes(api::HttpServer& server, Agent& agent) {
  server.handle("POST", "/v1/cni/add",
                [&](api::Request& r) { return api::Response::json(agent.cni_add(cni_request(std::move(r.body)))); });
  server.handle("POST", "/v1/cni/del", [&](api::Request& r) {
    agent.cni_del(cni_request(std::move(r.body)));
    return api::Response::json(nlohmann::json::object());
  });
  server.handle("POST", "/v1/cni/check", [&](api::Request& r) {
    return api::Response::json(agent.cni_check(cni_request(std::move(r.body))));
  });
  server.handle("POST", "/v1/cni/gc", [&](api::Request& r) {
    nlohmann::json j;
    api::JsonField root = api::parse_json_body(std::move(r.body), j);
    std::set<std::string> valid;
    for (auto& id : root.at("validContainerIDs").items()) valid.insert(id.string());
    return api::Response::json(agent.cni_gc(valid));
  });
}

}  // namespace pilus::agent
