// Services: the agent's side of the service controller (controller/service_controller.h),
// which holds the Service objects and writes the LB maps.
#include <set>

#include "agent/agent.h"
#include "service/backend_selection.h"

namespace pilus::agent {

// The pods as they are now, as candidate backends: the service controller writes what changed
// into the LB maps.
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
  service_controller_->reconcile(pods, live_ips);
}

api::v1::ServiceList Agent::services() const {
  Lock lock(mutex_);
  return service_controller_->list();
}

api::v1::BpfLb Agent::bpf_lb() const {
  Lock lock(mutex_);
  return service_controller_->bpf_lb(config_.lb_algorithm);
}

}  // namespace pilus::agent
