#include "agent/cleanup.h"

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "agent/pod_networks.h"
#include "agent/run_agent.h"
#include "common/error.h"
#include "datapath/datapath.h"
#include "datapath/host_network.h"
#include "endpoint/cgroup.h"
#include "endpoint/endpoint.h"
#include "store/state_dir.h"

namespace pilus::agent {
namespace fs = std::filesystem;

namespace {

void stop_running_agent(const std::string& state_dir, std::vector<std::string>& done) {
  std::ifstream pidfile(pidfile_path(state_dir));
  endpoint::ProcessHandle agent;
  if (!(pidfile >> agent.pid >> agent.start_time) || !endpoint::process_alive(agent)) return;
  endpoint::stop_process(agent, 10000);
  done.push_back("stopped agent (pid " + std::to_string(agent.pid) + ")");
}

}  // namespace

std::vector<std::string> cleanup(const AgentConfig& flags) {
  std::vector<std::string> done;
  AgentConfig config = flags;
  std::vector<endpoint::Endpoint> endpoints;
  // Without the config an agent saved, nothing says which names are pilus's
  // here: removing the defaults could wreck another agent. Touch nothing.
  std::unique_ptr<store::Store> store;
  std::optional<nlohmann::json> saved;
  if (store::has_state(flags.state_dir)) {
    store = store::open_state_store(flags.state_dir);
    saved = store->get("config", "agent");
  }
  if (!saved) {
    done.push_back("nothing to clean up: no pilus agent state in " + flags.state_dir);
    return done;
  }
  config = config_from_json(*saved);
  stop_running_agent(flags.state_dir, done);
  std::vector<PodNetwork> orphans;  // networks of pods an interrupted change did not commit
  {
    std::set<std::string> stored;
    for (const auto& [key, body] : store->list("pods")) {
      endpoints.push_back(endpoint::endpoint_from_json(body.at("endpoint")));
      stored.insert(key);
    }
    for (const auto& [key, net] : store::Collection<PodNetwork>(*store, kPodNetworks).list())
      if (!stored.count(key)) orphans.push_back(net);
    store.reset();
  }
  for (const auto& net : orphans) {
    datapath::link_delete(net.host_if);
    datapath::netns_delete(net.netns);
    done.push_back("removed netns " + net.netns + " and link " + net.host_if + " of an uncommitted pod");
  }
  for (const auto& ep : endpoints) {
    if (ep.process.pid) endpoint::stop_process(ep.process, 1000);
    datapath::link_delete(ep.host_if);
    datapath::netns_delete(ep.netns);
    done.push_back("removed pod " + ep.key() + " (netns " + ep.netns + ", link " + ep.host_if + ")");
  }
  endpoint::PodCgroup::destroy(config.cgroup);
  if (datapath::link_ifindex(config.host_device)) {
    datapath::link_delete(config.host_device);
    done.push_back("removed link " + config.host_device);
  }
  if (fs::exists(config.bpf_root)) {
    datapath::Datapath::remove_pins(config.bpf_root);
    done.push_back("removed BPF pins " + config.bpf_root);
  }
  std::error_code ec;
  if (fs::remove(config.socket, ec)) done.push_back("removed socket " + config.socket);
  if (fs::exists(flags.state_dir)) {
    fs::remove_all(flags.state_dir, ec);
    if (ec) fail("removing {}: {}", flags.state_dir, ec.message());
    done.push_back("removed state dir " + flags.state_dir);
  }
  return done;
}

}  // namespace pilus::agent
