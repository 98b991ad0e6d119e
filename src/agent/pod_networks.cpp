// Pod network records and removing the orphans of a crash (see pod_networks.h).
#include "agent/pod_networks.h"

#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>

#include "datapath/host_network.h"
#include "endpoint/endpoint.h"

namespace pilus::agent {

void to_json(nlohmann::json& j, const PodNetwork& n) { j = {{"netns", n.netns}, {"host_if", n.host_if}}; }

void from_json(const nlohmann::json& j, PodNetwork& n) {
  n.netns = j.at("netns").get<std::string>();
  n.host_if = j.at("host_if").get<std::string>();
}

PodNetwork pod_network_of(const std::string& ns, const std::string& name) {
  std::string netns = endpoint::netns_name(ns, name);
  return {netns, endpoint::host_if_name(netns)};
}

namespace {

// The inode that identifies a network namespace: of /run/netns/<name>, or of /proc/<pid>/ns/net.
std::optional<ino_t> netns_inode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return st.st_ino;
}

std::vector<int> cgroup_pids(const std::string& cgroup_path) {
  std::vector<int> pids;
  std::ifstream procs(cgroup_path + "/cgroup.procs");
  int pid;
  while (procs >> pid) pids.push_back(pid);
  return pids;
}

}  // namespace

std::vector<int> kill_processes_outside(const std::string& cgroup_path, const std::vector<std::string>& keep) {
  std::set<ino_t> kept;
  // Host processes a user put in the cgroup (for the socket load balancer) are not pods'.
  if (auto host = netns_inode("/proc/self/ns/net")) kept.insert(*host);
  for (const auto& netns : keep)
    if (auto ino = netns_inode("/run/netns/" + netns)) kept.insert(*ino);
  std::vector<int> killed;
  for (int pid : cgroup_pids(cgroup_path)) {
    auto ino = netns_inode("/proc/" + std::to_string(pid) + "/ns/net");
    if (!ino || kept.count(*ino)) continue;  // gone already, or a stored pod's
    if (::kill(pid, SIGKILL) == 0) killed.push_back(pid);
  }
  // Gone from the cgroup once they are dead (a zombie leaves cgroup.procs too).
  for (int attempt = 0; attempt < 250 && !killed.empty(); attempt++) {
    std::set<int> left;
    for (int pid : cgroup_pids(cgroup_path)) left.insert(pid);
    bool any = false;
    for (int pid : killed) any = any || left.count(pid);
    if (!any) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return killed;
}

std::vector<std::string> remove_orphans(store::Store& store, const std::string& cgroup_path) {
  std::vector<std::string> done;
  store::Collection<PodNetwork> records(store, kPodNetworks);
  std::vector<std::string> stored_netns;
  std::set<std::string> stored_pods;
  for (const auto& [key, body] : store.list("pods")) {
    stored_pods.insert(key);
    stored_netns.push_back(body.at("endpoint").at("netns").get<std::string>());
  }
  for (int pid : kill_processes_outside(cgroup_path, stored_netns))
    done.push_back("killed process " + std::to_string(pid) + " of no stored pod");
  store::WriteBatch erase;
  for (const auto& [key, n] : records.list()) {
    if (stored_pods.count(key)) continue;
    datapath::link_delete(n.host_if);
    datapath::netns_delete(n.netns);
    records.erase(erase, key);
    done.push_back("removed netns " + n.netns + " and link " + n.host_if + " of pod " + key + ", which is not stored");
  }
  store.commit(erase);
  for (const auto& line : done) spdlog::warn("orphan of an interrupted change: {}", line);
  return done;
}

}  // namespace pilus::agent
