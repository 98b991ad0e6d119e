// Services: the desired Service objects with their cluster IPs (allocated from --service-cidr),
// and the LB maps (through service::ServiceMaps, their one writer) kept in step with the pods
// that back each service. Restore after a restart loads the stored services; the next
// reconcile() rewrites the pinned maps in place. The caller (the agent) holds its lock.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/v1/apply.h"
#include "api/v1/bpf_maps.h"
#include "api/v1/services.h"
#include "controller/objects.h"
#include "controller/store_writer.h"
#include "endpoint/ipam.h"
#include "manifest/service.h"
#include "service/backend_selection.h"
#include "service/service_maps.h"

namespace pilus::controller {

class ServiceController {
 public:
  ServiceController(const datapath::Datapath& datapath, const std::string& service_cidr, StoreWriter& store);

  struct Desired {
    manifest::Document doc;
    manifest::Service svc;
    endpoint::Ipv4 vip;
  };
  using AddUndo = std::function<void(std::function<void()>)>;

  // The stored services, with their cluster IPs claimed again.
  void restore(const store::Store& store);
  // Throws at the first Service of `objects` the apply must refuse (service_plan.h).
  void plan(const Objects& objects, const std::set<std::string>& known_namespaces) const;
  // Records a Service (created, configured or unchanged, in `results`); add_undo receives the
  // step that takes it back if the apply fails later.
  void apply(const manifest::Document& doc, const manifest::Service& svc, std::vector<api::v1::ObjectResult>& results,
             const AddUndo& add_undo);
  // Deletes a service if it exists (a result line in `results`); false when there is none.
  bool remove(const std::string& key, std::vector<api::v1::ObjectResult>& results);
  std::vector<std::string> keys_in_namespace(const std::string& ns) const;
  const Desired* find(const std::string& key) const;

  // Makes the LB maps hold every service's backends among `pods` as they are now.
  void reconcile(const std::vector<service::PodCandidate>& pods, const std::set<uint32_t>& live_pod_ips);

  // Views (caller holds the agent's lock).
  api::v1::ServiceList list() const;
  api::v1::BpfLb bpf_lb(const std::string& algorithm) const;
  std::string metrics_text() const;

 private:
  void save(const std::string& key, const Desired& d);

  StoreWriter& store_;
  endpoint::Ipam vips_;
  std::map<std::string, Desired> services_;  // key: namespace/name
  std::vector<service::Frontend> frontends_;  // as last written to the LB maps
  service::ServiceMaps maps_;
};

}  // namespace pilus::controller
