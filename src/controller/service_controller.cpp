#include "controller/service_controller.h"

#include <netinet/in.h>

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "controller/service_plan.h"
#include "metrics/prometheus_text.h"

namespace pilus::controller {

namespace {

api::v1::ObjectResult result(const std::string& ns, const std::string& name, const std::string& action) {
  return {"Service", ns, name, action};
}

}  // namespace

ServiceController::ServiceController(const datapath::Datapath& datapath, const std::string& service_cidr,
                                     StoreWriter& store)
    : store_(store), vips_(service_cidr), maps_(datapath) {}

void ServiceController::restore(const store::Store& store) {
  for (auto& [key, body] : store.list("services")) {
    manifest::Document doc = manifest::document_from_json(body.at("manifest"), "store");
    auto svc = std::get<manifest::Service>(manifest::parse_object(doc));
    endpoint::Ipv4 vip = endpoint::parse_ipv4(body.at("vip").get<std::string>());
    if (!vips_.contains(vip))
      fail("service {} has cluster IP {}, outside --service-cidr {}: start the agent with the service CIDR it was "
           "created with, or run `pilus cleanup`",
           key, endpoint::to_string(vip), vips_.cidr());
    vips_.allocate_specific(vip);
    services_.insert_or_assign(key, Desired{doc, svc, vip});
  }
}

void ServiceController::plan(const Objects& objects, const std::set<std::string>& known_namespaces) const {
  std::map<std::string, endpoint::Ipv4> existing;
  for (const auto& [key, d] : services_) existing.emplace(key, d.vip);
  plan_services(objects, existing, vips_, known_namespaces);
}

void ServiceController::save(const std::string& key, const Desired& d) {
  store_.put("services", key, {{"manifest", d.doc.body}, {"vip", endpoint::to_string(d.vip)}});
}

void ServiceController::apply(const manifest::Document& doc, const manifest::Service& svc, std::vector<api::v1::ObjectResult>& results,
                              const AddUndo& add_undo) {
  const std::string key = svc.ns + "/" + svc.name;
  if (auto it = services_.find(key); it != services_.end()) {
    if (it->second.doc.body == doc.body) {
      results.push_back(result(svc.ns, svc.name, "unchanged"));
      return;
    }
    Desired before = it->second;
    it->second.doc = doc;
    it->second.svc = svc;
    save(key, it->second);
    add_undo([this, key, before] {
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
  services_.insert_or_assign(key, Desired{doc, svc, vip});
  save(key, services_.at(key));
  add_undo([this, key, vip] {
    services_.erase(key);
    store_.erase("services", key);
    vips_.release(vip);
  });
  results.push_back(result(svc.ns, svc.name, "created"));
}

bool ServiceController::remove(const std::string& key, std::vector<api::v1::ObjectResult>& results) {
  auto it = services_.find(key);
  if (it == services_.end()) return false;
  vips_.release(it->second.vip);
  store_.erase("services", key);
  results.push_back(result(it->second.svc.ns, it->second.svc.name, "deleted"));
  services_.erase(it);
  return true;
}

std::vector<std::string> ServiceController::keys_in_namespace(const std::string& ns) const {
  std::vector<std::string> keys;
  for (const auto& [key, d] : services_)
    if (d.svc.ns == ns) keys.push_back(key);
  return keys;
}

const ServiceController::Desired* ServiceController::find(const std::string& key) const {
  auto it = services_.find(key);
  return it == services_.end() ? nullptr : &it->second;
}

void ServiceController::reconcile(const std::vector<service::PodCandidate>& pods,
                                  const std::set<uint32_t>& live_pod_ips) {
  std::vector<service::Frontend> frontends;
  for (const auto& [key, d] : services_) {
    for (const auto& port : d.svc.ports) {
      service::Frontend f;
      f.service = key;
      f.port_name = port.name;
      f.vip = d.vip;
      f.port = port.port;
      f.proto = port.protocol == "UDP" ? IPPROTO_UDP : IPPROTO_TCP;
      f.client_ip_affinity = d.svc.client_ip_affinity;
      f.affinity_timeout_s = d.svc.affinity_timeout_s;
      f.backends = service::select_backends(d.svc, port, pods);
      frontends.push_back(std::move(f));
    }
  }
  size_t rows = maps_.sync(frontends, live_pod_ips);
  if (rows) spdlog::info("services: {} Maglev tables rewritten", rows);
  frontends_ = std::move(frontends);
}

api::v1::ServiceList ServiceController::list() const {
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

api::v1::BpfLb ServiceController::bpf_lb(const std::string& algorithm) const {
  return {maps_.maglev_size(), algorithm, maps_.list()};
}

std::string ServiceController::metrics_text() const {
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

}  // namespace pilus::controller
