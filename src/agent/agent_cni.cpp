// Containers of a container runtime (podman, through the pilus-cni plugin): endpoints in a network
// namespace the runtime made, owned by the runtime. The namespace is bound at /run/netns/<netns>
// while pilus serves it, so everything else (links, maps, policy, services, flows, restart
// adoption) treats the container as a pod like any other. Its labels come from a Pod object
// applied with spec.runtimeClassName: pilus-cni and the same namespace/name if there is one, else
// from the container's own labels (which the plugin reads from the runtime).
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <regex>

#include <spdlog/spdlog.h>

#include "agent/agent.h"
#include "agent/batch_scope.h"
#include "agent/pod_networks.h"
#include "common/command.h"
#include "common/error.h"
#include "datapath/host_network.h"

namespace fs = std::filesystem;

namespace pilus::agent {

namespace {

constexpr const char* kRuntimePods = "runtime-pods";

api::v1::ObjectResult result(const std::string& ns, const std::string& name, const std::string& action) {
  return {"Pod", ns, name, action};
}

std::string netns_path_of(const std::string& netns) { return "/run/netns/" + netns; }

// Fails unless `path` is a network namespace (an nsfs file of type CLONE_NEWNET).
void require_netns(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("CNI_NETNS {}: {}", path, std::strerror(errno));
  int type = ioctl(fd, NS_GET_NSTYPE);
  close(fd);
  if (type != CLONE_NEWNET) fail("CNI_NETNS {}: not a network namespace", path);
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  return stat(a.c_str(), &sa) == 0 && stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

// Binds the runtime's namespace at /run/netns/<name>, where `ip -n` and the rest of pilus find it.
// netns_delete() undoes it (iproute2 unmounts and unlinks); the runtime's namespace lives on.
void bind_netns(const std::string& path, const std::string& name) {
  fs::create_directories("/run/netns");
  const std::string target = netns_path_of(name);
  int fd = open(target.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
  if (fd < 0) fail("binding the container's network namespace at {}: {}", target, std::strerror(errno));
  close(fd);
  if (mount(path.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    int err = errno;
    unlink(target.c_str());
    fail("binding the container's network namespace {} at {}: {}", path, target, std::strerror(err));
  }
}

// Kubernetes label syntax (an optional DNS-subdomain prefix and "/", a name of at most 63
// characters; values at most 63): runtime labels outside it ("maintainer=Jane Doe <...>") are
// not identity labels and are left out.
bool valid_label(const std::string& key, const std::string& value) {
  static const std::regex name("[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?");
  static const std::regex prefix("[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*");
  std::string n = key;
  if (auto slash = key.find('/'); slash != std::string::npos) {
    std::string p = key.substr(0, slash);
    if (p.size() > 253 || !std::regex_match(p, prefix)) return false;
    n = key.substr(slash + 1);
  }
  if (!std::regex_match(n, name)) return false;
  return value.empty() || std::regex_match(value, name);
}

// The Pod object of a runtime's container that no Pod object declares: its own labels.
nlohmann::json undeclared_pod_body(const std::string& ns, const std::string& name,
                                   const std::map<std::string, std::string>& labels) {
  nlohmann::json body = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", name}, {"namespace", ns}}},
      {"spec", {{"runtimeClassName", manifest::kRuntimeClassCni}, {"containers", {{{"name", "container"}}}}}}};
  if (!labels.empty()) body["metadata"]["labels"] = labels;
  return body;
}

int tc_prog_id(int ifindex, bpf_tc_attach_point point) {
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point);
  LIBBPF_OPTS(bpf_tc_opts, opts, .handle = 1, .priority = 1);
  if (bpf_tc_query(&hook, &opts) != 0) return 0;
  return static_cast<int>(opts.prog_id);
}

int prog_id_of_fd(int fd) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return -1;
  return static_cast<int>(info.id);
}

}  // namespace

nlohmann::json Agent::cni_result(const endpoint::Endpoint& ep) const {
  const std::string gw = endpoint::to_string(ipam_.router_ip());
  return {{"interfaces",
           {{{"name", ep.host_if}, {"mac", datapath::mac_to_string(ep.host_mac)}},
            {{"name", ep.runtime->if_name},
             {"mac", datapath::mac_to_string(ep.pod_mac)},
             {"sandbox", ep.runtime->netns_path}}}},
          {"ips", {{{"address", endpoint::to_string(ep.ip) + "/32"}, {"gateway", gw}, {"interface", 1}}}},
          {"routes", {{{"dst", "0.0.0.0/0"}, {"gw", gw}}, {{"dst", gw + "/32"}}}},
          {"dns", nlohmann::json::object()},
          {"identity", ep.identity},
          {"endpointID", ep.id}};
}

nlohmann::json Agent::cni_add(const CniRequest& r) {
  if (r.container_id.empty()) fail("containerID is empty (CNI_CONTAINERID)");
  if (r.netns_path.empty()) fail("netns is empty (CNI_NETNS)");
  if (r.if_name.empty() || r.if_name.size() > 15) fail("ifName \"{}\": must be 1 to 15 characters (CNI_IFNAME)", r.if_name);
  if (r.name.empty()) fail("the pod name is empty (K8S_POD_NAME in CNI_ARGS)");
  require_netns(r.netns_path);
  Lock lock(mutex_);
  const std::string key = r.ns + "/" + r.name;
  if (auto it = pods_.find(key); it != pods_.end()) {
    const endpoint::Endpoint& ep = it->second.ep;
    if (!ep.runtime)
      fail("pod {} was created by pilus apply, not by a container runtime; give the container another name", key);
    if (ep.runtime->id == r.container_id && ep.runtime->if_name == r.if_name &&
        same_file(netns_path_of(ep.netns), r.netns_path))
      return cni_result(ep);  // ADD again: the same endpoint
    // The same name for another container or namespace: the previous one's DEL never came.
    spdlog::info("pod {}: container {} replaces {}, whose endpoint is removed", key, r.container_id, ep.runtime->id);
    remove_runtime_endpoint(key);
  }
  if (r.ns != "default" && !namespaces_.count(r.ns))
    fail("namespace \"{}\" not found (K8S_POD_NAMESPACE); apply a Namespace manifest first", r.ns);
  if (ipam_.available() == 0) fail("pod CIDR {} is exhausted", ipam_.cidr());

  // The Pod object: the declared one if there is one, else one made of the container's labels.
  std::map<std::string, std::string> own_labels;
  for (const auto& [k, v] : r.labels) {
    if (valid_label(k, v))
      own_labels[k] = v;
    else
      spdlog::debug("pod {}: container label {}={} is not a valid Kubernetes label, left out", key, k, v);
  }
  nlohmann::json body;
  if (auto d = runtime_pod_docs_.find(key); d != runtime_pod_docs_.end()) {
    body = d->second.body;
  } else {
    body = undeclared_pod_body(r.ns, r.name, own_labels);
  }
  manifest::Document doc = manifest::document_from_json(body, "cni");
  manifest::Pod pod;
  try {
    pod = std::get<manifest::Pod>(manifest::parse_object(doc));
  } catch (const Error& e) {
    fail("container {} as pod {}: {}", r.container_id, key, e.what());
  }

  endpoint::Endpoint ep;
  ep.ns = r.ns;
  ep.name = r.name;
  ep.id = allocate_endpoint_id();
  ep.netns = endpoint::netns_name(r.ns, r.name);
  ep.host_if = endpoint::host_if_name(ep.netns);
  ep.host_mac = datapath::mac_from_name(ep.netns + "/" + r.container_id, 1);
  ep.pod_mac = datapath::mac_from_name(ep.netns + "/" + r.container_id, 2);
  ep.runtime = endpoint::RuntimeContainer{r.container_id, r.netns_path, r.if_name, own_labels};
  if (datapath::netns_exists(ep.netns) || datapath::link_ifindex(ep.host_if) != 0)
    fail("pod {}: network namespace {} or link {} already exists on this node (left by another run? try `pilus "
         "cleanup`)",
         key, ep.netns, ep.host_if);
  {
    store::WriteBatch record;  // before anything is made: a crash part way leaves an orphan the next start removes
    record.put(kPodNetworks, key, PodNetwork{ep.netns, ep.host_if});
    store_->commit(record);
  }
  try {
    bind_netns(r.netns_path, ep.netns);
    // A restarted container (DEL, then ADD with the same id) gets its address back while it is free.
    if (auto last = runtime_last_ip_.find(r.container_id);
        last != runtime_last_ip_.end() && ipam_.contains(last->second) && !ipam_.is_allocated(last->second)) {
      ipam_.allocate_specific(last->second);
      ep.ip = last->second;
    } else {
      ep.ip = ipam_.allocate();
    }
    ep.identity = identities_->acquire(identity_labels(pod));
    policy_controller_->set_endpoint_flags(ep.id, policy_controller_->initial_flags(identity_labels(pod)));
    datapath::PodLink link{ep.netns,
                           ep.host_if,
                           ep.host_mac,
                           ep.pod_mac,
                           endpoint::to_string(ep.ip),
                           endpoint::to_string(ipam_.router_ip()),
                           r.if_name};
    datapath::create_pod_link(link);
    ep.ifindex = datapath::link_ifindex(ep.host_if);
    if (ep.ifindex == 0) fail("pod {}: link {} vanished while being set up", key, ep.host_if);
    write_endpoint_maps(ep);
    datapath_->attach_to_pod_veth(ep.ifindex);
    pods_.insert_or_assign(key, PodState{doc, pod, ep});
    store::WriteBatch writes;
    {
      BatchScope batch_scope(store_writer_.batch_slot(), writes);
      save_pod(doc, ep);
      regenerate_policy();
      sync_services();
    }
    store_->commit(writes);
  } catch (const std::exception& failure) {
    spdlog::warn("pod {}: CNI ADD failed, undoing it: {}", key, failure.what());
    pods_.erase(key);
    try {
      destroy_endpoint(ep);
      store::WriteBatch erase;
      erase.erase(kPodNetworks, key);
      store_->commit(erase);
      regenerate_policy();
      sync_services();
    } catch (const std::exception& e) {
      spdlog::error("pod {}: undoing a failed CNI ADD: {}", key, e.what());
    }
    throw;
  }
  spdlog::info("pod {} (container {}) added: ip {} identity {} netns {} link {}", key, r.container_id,
               endpoint::to_string(ep.ip), ep.identity, r.netns_path, ep.host_if);
  return cni_result(ep);
}

// Leaves its services first, then the store, then the kernel (as delete does).
void Agent::remove_runtime_endpoint(const std::string& key) {
  PodState& st = pods_.at(key);
  st.leaving = true;
  sync_services();
  endpoint::Endpoint ep = st.ep;
  {
    store::WriteBatch writes;
    {
      BatchScope batch_scope(store_writer_.batch_slot(), writes);
      store_erase("pods", key);
    }
    store_->commit(writes);
  }
  pods_.erase(key);
  destroy_endpoint(ep);
  if (ep.runtime) {
    if (runtime_last_ip_.size() >= 4096) runtime_last_ip_.clear();  // a bound, not a cache policy
    runtime_last_ip_[ep.runtime->id] = ep.ip;
  }
  store::WriteBatch erase;
  erase.erase(kPodNetworks, key);
  store_->commit(erase);
  regenerate_policy();
  sync_services();
  spdlog::info("pod {} (container {}) deleted", key, ep.runtime ? ep.runtime->id : "?");
}

void Agent::cni_del(const CniRequest& r) {
  Lock lock(mutex_);
  const std::string key = r.ns + "/" + r.name;
  auto it = pods_.find(key);
  // DEL of what pilus does not hold is no error (the spec asks for that); neither is a DEL for an
  // older container of the same name, whose endpoint the newer one's ADD already replaced.
  if (it == pods_.end() || !it->second.ep.runtime || it->second.ep.runtime->id != r.container_id) return;
  remove_runtime_endpoint(key);
}

nlohmann::json Agent::cni_check(const CniRequest& r) {
  Lock lock(mutex_);
  const std::string key = r.ns + "/" + r.name;
  auto it = pods_.find(key);
  if (it == pods_.end() || !it->second.ep.runtime || it->second.ep.runtime->id != r.container_id)
    fail("container {} has no pilus endpoint (pod {})", r.container_id, key);
  const endpoint::Endpoint& ep = it->second.ep;
  if (!r.netns_path.empty() && !same_file(netns_path_of(ep.netns), r.netns_path))
    fail("pod {}: the endpoint is in another network namespace than {}", key, r.netns_path);
  int ifindex = datapath::link_ifindex(ep.host_if);
  if (ifindex == 0 || ifindex != ep.ifindex) fail("pod {}: its host link {} is gone", key, ep.host_if);
  const std::string ip = endpoint::to_string(ep.ip);
  const std::string gw = endpoint::to_string(ipam_.router_ip());
  auto addrs = nlohmann::json::parse(
      run_checked({"ip", "-n", ep.netns, "-j", "-4", "addr", "show", "dev", ep.runtime->if_name}), nullptr, false);
  bool has_ip = false;
  if (addrs.is_array())
    for (const auto& link : addrs)
      for (const auto& a : link.value("addr_info", nlohmann::json::array()))
        if (a.value("local", "") == ip && a.value("prefixlen", 0) == 32) has_ip = true;
  if (!has_ip) fail("pod {}: {} lost its address {}/32", key, ep.runtime->if_name, ip);
  auto routes = nlohmann::json::parse(run_checked({"ip", "-n", ep.netns, "-j", "-4", "route", "show", "default"}),
                                      nullptr, false);
  bool has_default = false;
  if (routes.is_array())
    for (const auto& rt : routes)
      if (rt.value("gateway", "") == gw && rt.value("dev", "") == ep.runtime->if_name) has_default = true;
  if (!has_default) fail("pod {}: the default route via {} dev {} is missing", key, gw, ep.runtime->if_name);
  if (tc_prog_id(ifindex, BPF_TC_INGRESS) != prog_id_of_fd(datapath_->from_pod_fd()) ||
      tc_prog_id(ifindex, BPF_TC_EGRESS) != prog_id_of_fd(datapath_->to_pod_fd()))
    fail("pod {}: pilus's programs are not attached to {}", key, ep.host_if);
  auto info = datapath_->endpoints().lookup(endpoint_key{ep.ip.network_order()});
  if (!info || info->ifindex != static_cast<uint32_t>(ifindex) || info->identity != ep.identity)
    fail("pod {}: the endpoint map entry for {} is missing or stale", key, ip);
  auto cached = datapath_->ipcache().lookup(ipcache_key{32, ep.ip.network_order()});
  if (!cached || cached->identity != ep.identity) fail("pod {}: the ipcache entry for {} is missing or stale", key, ip);
  return cni_result(ep);
}

nlohmann::json Agent::cni_gc(const std::set<std::string>& valid_container_ids) {
  Lock lock(mutex_);
  std::vector<std::string> stale;
  for (const auto& [key, st] : pods_)
    if (st.ep.runtime && !valid_container_ids.count(st.ep.runtime->id)) stale.push_back(key);
  for (const auto& key : stale) remove_runtime_endpoint(key);
  return {{"removed", stale}};
}

// The labels a runtime container's identity takes: its declared Pod's, else its own.
bool Agent::apply_runtime_pod(const manifest::Document& doc, const manifest::Pod& pod, std::vector<api::v1::ObjectResult>& results,
                              const AddUndoStep& add_undo) {
  if (pod.runtime_class != manifest::kRuntimeClassCni) return false;
  const std::string key = pod.ns + "/" + pod.name;
  if (auto it = pods_.find(key); it != pods_.end() && !it->second.ep.runtime)
    fail("{}: pod {} exists and was created by pilus apply; a Pod of runtimeClassName {} declares a runtime's container",
         doc.describe(), key, manifest::kRuntimeClassCni);
  if (pod.ns != "default" && !namespaces_.count(pod.ns))
    fail("{}: metadata.namespace: namespace \"{}\" not found; apply a Namespace manifest first (or in the same file)",
         doc.describe(), pod.ns);
  std::optional<manifest::Document> before;
  if (auto it = runtime_pod_docs_.find(key); it != runtime_pod_docs_.end()) {
    if (it->second.body == doc.body) {
      results.push_back(result(pod.ns, pod.name, "unchanged"));
      return true;
    }
    before = it->second;
  }
  // The running container (if any) takes the declared object's labels: a new identity.
  auto relabel = [this, key] {
    auto it = pods_.find(key);
    if (it == pods_.end() || !it->second.ep.runtime) return;
    PodState& st = it->second;
    nlohmann::json body;
    if (auto d = runtime_pod_docs_.find(key); d != runtime_pod_docs_.end()) {
      body = d->second.body;
    } else {
      body = undeclared_pod_body(st.ep.ns, st.ep.name, st.ep.runtime->labels);
    }
    st.doc = manifest::document_from_json(body, "cni");
    st.pod = std::get<manifest::Pod>(manifest::parse_object(st.doc));
    relabel_endpoint(st.ep);
    save_pod(st.doc, st.ep);
  };
  runtime_pod_docs_.insert_or_assign(key, doc);
  store_put(kRuntimePods, key, doc.body);
  add_undo([this, key, before, relabel] {
    if (before) {
      runtime_pod_docs_.insert_or_assign(key, *before);
      store_put(kRuntimePods, key, before->body);
    } else {
      runtime_pod_docs_.erase(key);
      store_erase(kRuntimePods, key);
    }
    relabel();
  });
  relabel();
  results.push_back(result(pod.ns, pod.name, before ? "configured" : "created"));
  return true;
}

// Deleting the declared Pod gives the container back its own labels (it keeps running: the
// runtime owns it).
bool Agent::delete_runtime_pod(const std::string& key, std::vector<api::v1::ObjectResult>& results) {
  auto it = runtime_pod_docs_.find(key);
  if (it == runtime_pod_docs_.end()) return false;
  const std::string ns = key.substr(0, key.find('/')), name = key.substr(key.find('/') + 1);
  runtime_pod_docs_.erase(it);
  store_erase(kRuntimePods, key);
  if (auto p = pods_.find(key); p != pods_.end() && p->second.ep.runtime) {
    PodState& st = p->second;
    st.doc = manifest::document_from_json(undeclared_pod_body(ns, name, st.ep.runtime->labels), "cni");
    st.pod = std::get<manifest::Pod>(manifest::parse_object(st.doc));
    relabel_endpoint(st.ep);
    save_pod(st.doc, st.ep);
  }
  results.push_back(result(ns, name, "deleted"));
  return true;
}

void Agent::restore_runtime_pods() {
  for (auto& [key, body] : store_->list(kRuntimePods))
    runtime_pod_docs_.insert_or_assign(key, manifest::document_from_json(body, "store"));
}

}  // namespace pilus::agent
