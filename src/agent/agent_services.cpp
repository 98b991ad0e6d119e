// Services: VIP allocation, apply/delete of Service objects, and keeping the
// LB maps in step with the pods that back each service.
#include <netinet/in.h>

#include <set>

#include <spdlog/spdlog.h>

#include "agent/agent.h"
#include "common/error.h"
#include "metrics/prometheus_text.h"
#include "service/backend_selection.h"

namespace pilus::agent {

namespace {

api::v1::ObjectResult result(const std::string& ns, const std::string& name, const std::string& action) {
  return {"Service", ns, name, action};
}

}  // namespace

void Agent::restore_services() {
  for (auto& [key, body] : store_->list("services")) {
    manifest::Document doc = manifest::document_from_json(body.at("manifest"), "store");
    auto svc = std::get<manifest::Service>(manifest::parse_object(doc));
    endpoint::Ipv4 vip = endpoint::parse_ipv4(body.at("vip").get<std::string>());
    if (!vips_.contains(vip))
      fail("service {} has cluster IP {}, outside --service-cidr {}: start the agent with the service CIDR it was "
           "created with, or run `pilus cleanup`",
           key, endpoint::to_string(vip), vips_.cidr());
    vips_.allocate_specific(vip);
    services_.insert_or_assign(key, ServiceState{doc, svc, vip});
  }
}

// Every check that can refuse a Service, before anything changes.
void Agent::plan_services(const std::vector<std::pair<manifest::Document, manifest::Object>>& objects) const {
  std::set<std::string> known_ns = {"default"};
  for (const auto& [name, ns] : namespaces_) known_ns.insert(name);
  for (const auto& [doc, obj] : objects)
    if (auto* ns = std::get_if<manifest::NamespaceObject>(&obj)) known_ns.insert(ns->name);
  std::map<uint32_t, std::string> claimed;  // VIPs asked for in this apply
  size_t new_vips = 0;
  for (const auto& [doc, obj] : objects) {
    const auto* svc = std::get_if<manifest::Service>(&obj);
    if (!svc) continue;
    if (!known_ns.count(svc->ns))
      fail("{}: metadata.namespace: namespace \"{}\" not found; apply a Namespace manifest first (or in the same file)",
           doc.describe(), svc->ns);
    auto it = services_.find(svc->ns + "/" + svc->name);
    if (it != services_.end()) {
      if (!svc->cluster_ip.empty() && endpoint::parse_ipv4(svc->cluster_ip) != it->second.vip)
        fail("{}: spec.clusterIP: a service's cluster IP cannot change (it is {}); delete the service first",
             doc.describe(), endpoint::to_string(it->second.vip));
      continue;
    }
    if (svc->cluster_ip.empty()) {
      new_vips++;
      continue;
    }
    endpoint::Ipv4 ip = endpoint::parse_ipv4(svc->cluster_ip);
    // The CIDR's first two addresses and its last are never handed out (as the VIP allocator does).
    const uint32_t first = vips_.router_ip().value + 1, last = vips_.router_ip().value + uint32_t(vips_.capacity());
    if (!vips_.contains(ip) || ip.value < first || ip.value > last)
      fail("{}: spec.clusterIP: {} is not a usable address of the service CIDR {}", doc.describe(), svc->cluster_ip,
           vips_.cidr());
    if (vips_.is_allocated(ip))
      fail("{}: spec.clusterIP: {} is already used by another service", doc.describe(), svc->cluster_ip);
    auto [c, added] = claimed.emplace(ip.value, doc.describe());
    if (!added) fail("{}: spec.clusterIP: {} is also asked for by {}", doc.describe(), svc->cluster_ip, c->second);
  }
  if (new_vips + claimed.size() > vips_.available())
    fail("service CIDR {} is exhausted: {} new services, {} addresses left", vips_.cidr(), new_vips + claimed.size(),
         vips_.available());
}

void Agent::apply_service(const manifest::Document& doc, const manifest::Service& svc,
                          std::vector<api::v1::ObjectResult>& results, const AddUndo& add_undo) {
  const std::string key = svc.ns + "/" + svc.name;
  auto save = [this](const std::string& k, const ServiceState& st) {
    store_put("services", k, {{"manifest", st.doc.body}, {"vip", endpoint::to_string(st.vip)}});
  };
  if (auto it = services_.find(key); it != services_.end()) {
    if (it->second.doc.body == doc.body) {
      results.push_back(result(svc.ns, svc.name, "unchanged"));
      return;
    }
    ServiceState before = it->second;
    it->second.doc = doc;
    it->second.svc = svc;
    save(key, it->second);
    add_undo([this, key, before, save] {
      services_.insert_or_assign(key, before);
      save(key, before);
    });
    results.push_back(result(svc.ns, svc.name, "configured"));
    return;
  }
  endpoint::Ipv4 vip;
  if (svc.cluster_ip.empty()) {
    vip = vips_.allocate();
  } else {
    vip = endpoint::parse_ipv4(svc.cluster_ip);
    vips_.allocate_specific(vip);
  }
  services_.insert_or_assign(key, ServiceState{doc, svc, vip});
  save(key, services_.at(key));
  add_undo([this, key, vip] {
    services_.erase(key);
    store_erase("services", key);
    vips_.release(vip);
  });
  results.push_back(result(svc.ns, svc.name, "created"));
}

void Agent::delete_service(const std::string& key, std::vector<api::v1::ObjectResult>& results) {
  auto it = services_.find(key);
  if (it == services_.end()) return;
  vips_.release(it->second.vip);
  store_erase("services", key);
  results.push_back(result(it->second.svc.ns, it->second.svc.name, "deleted"));
  services_.erase(it);
}

// Recomputes every service's backends from the pods as they are now and
// writes what changed into the LB maps.
void Agent::sync_services() {
  std::vector<service::PodCandidate> pods;
  std::set<uint32_t> live_ips;
  for (const auto& [key, st] : pods_) {
    service::PodCandidate c{st.pod.ns, st.pod.name, st.pod.labels, st.ep.ip, {}, false};
    for (const auto& container : st.pod.containers)
      c.ports.insert(c.ports.end(), container.ports.begin(), container.ports.end());
    c.ready = st.ep.ifindex != 0 && st.ep.phase() == "Running" && !st.leaving;
    pods.push_back(std::move(c));
    live_ips.insert(st.ep.ip.network_order());
  }
  std::vector<service::Frontend> frontends;
  for (const auto& [key, st] : services_) {
    for (const auto& port : st.svc.ports) {
      service::Frontend f;
      f.service = key;
      f.port_name = port.name;
      f.vip = st.vip;
      f.port = port.port;
      f.proto = port.protocol == "UDP" ? IPPROTO_UDP : IPPROTO_TCP;
      f.client_ip_affinity = st.svc.client_ip_affinity;
      f.affinity_timeout_s = st.svc.affinity_timeout_s;
      f.backends = service::select_backends(st.svc, port, pods);
      frontends.push_back(std::move(f));
    }
  }
  size_t rows = service_maps_->sync(frontends, live_ips);
  if (rows) spdlog::info("services: {} Maglev tables rewritten", rows);
  frontends_ = std::move(frontends);
}

api::v1::ServiceList Agent::services() const {
  Lock lock(mutex_);
  auto list = api::v1::ServiceList::kube();
  for (const auto& [key, st] : services_) {
    api::v1::Service& item = list.items.emplace_back();
    item.metadata = {st.svc.name, st.svc.ns, st.svc.labels, {}};
    item.spec.cluster_ip = endpoint::to_string(st.vip);
    for (const auto& p : st.svc.ports)
      item.spec.ports.push_back({p.protocol, p.port, p.name, {p.target_port, p.target_port_name}});
    item.spec.selector = {st.svc.selector.begin(), st.svc.selector.end()};
    item.spec.session_affinity = st.svc.client_ip_affinity ? "ClientIP" : "None";
    for (const auto& f : frontends_) {
      if (f.service != key) continue;
      for (const auto& b : f.backends)
        item.status.backends.push_back(
            {b.pod, endpoint::to_string(b.ip), b.port, f.proto == IPPROTO_UDP ? "UDP" : "TCP"});
    }
  }
  return list;
}

api::v1::BpfLb Agent::bpf_lb() const {
  Lock lock(mutex_);
  return {service_maps_->maglev_size(), config_.lb_algorithm, service_maps_->list()};
}

std::string Agent::service_metrics_text() const {
  metrics::PrometheusText t;
  t.family("pilus_services", "gauge", "Service frontends (VIP, port, protocol) in the load balancer.");
  t.sample("pilus_services", static_cast<double>(frontends_.size()));
  t.family("pilus_service_backends", "gauge", "Active backends per service frontend.");
  for (const auto& f : frontends_)
    t.sample("pilus_service_backends",
             {{"service", f.service},
              {"frontend", fmt::format("{}:{}/{}", endpoint::to_string(f.vip), f.port,
                                       f.proto == IPPROTO_UDP ? "UDP" : "TCP")}},
             static_cast<double>(f.backends.size()));
  return t.text();
}

}  // namespace pilus::agent
