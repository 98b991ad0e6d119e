// The agent's Prometheus metrics, named as Cilium's and Hubble's where a
// counterpart exists, read from the datapath's counters at scrape time.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "abi/drop_reasons.h"
#include "agent/agent.h"
#include "datapath/drop_reason_names.h"
#include "metrics/prometheus_text.h"

namespace pilus::agent {

namespace {

const char* direction_label(uint8_t dir) { return dir == METRIC_INGRESS ? "INGRESS" : "EGRESS"; }

void process_metrics(metrics::PrometheusText& t) {
  std::ifstream stat("/proc/self/stat");
  std::string content;
  std::getline(stat, content);
  std::istringstream fields(content.substr(content.rfind(')') + 2));
  std::vector<std::string> f;
  for (std::string s; fields >> s;) f.push_back(s);
  // After "pid (comm) ": f[0] is field 3 (state); utime is field 14, stime 15, starttime 22, rss 24.
  double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  if (f.size() > 21) {
    t.family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
    t.sample("process_cpu_seconds_total", (std::stod(f[11]) + std::stod(f[12])) / ticks);
    t.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    t.sample("process_resident_memory_bytes", std::stod(f[21]) * page);
  }
  size_t fds = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec); !ec && it != std::filesystem::end(it);
       it.increment(ec))
    fds++;
  t.family("process_open_fds", "gauge", "Number of open file descriptors.");
  t.sample("process_open_fds", static_cast<double>(fds));
}

}  // namespace

uint64_t Agent::lost_events() const {
  int cpus = libbpf_num_possible_cpus();
  std::vector<uint64_t> values(static_cast<size_t>(cpus), 0);
  uint32_t zero = 0;
  uint64_t total = 0;
  if (bpf_map_lookup_elem(datapath_->events_lost_fd(), &zero, values.data()) == 0)
    for (uint64_t v : values) total += v;
  return total;
}

std::string Agent::metrics_text() const {
  struct Sum {
    uint64_t packets = 0, bytes = 0;
  };
  std::map<std::pair<uint8_t, uint8_t>, Sum> by_reason_dir;
  auto counters = datapath_->metrics();
  for (const auto& k : counters.keys()) {
    Sum& s = by_reason_dir[{k.reason, k.dir}];
    for (const auto& v : counters.lookup(k)) s.packets += v.packets, s.bytes += v.bytes;
  }

  metrics::PrometheusText t;
  t.family("cilium_forward_count_total", "counter", "Total forwarded packets, tagged by direction.");
  for (const auto& [key, s] : by_reason_dir)
    if (key.first == REASON_FORWARDED) t.sample("cilium_forward_count_total", {{"direction", direction_label(key.second)}}, double(s.packets));
  t.family("cilium_forward_bytes_total", "counter", "Total forwarded bytes, tagged by direction.");
  for (const auto& [key, s] : by_reason_dir)
    if (key.first == REASON_FORWARDED) t.sample("cilium_forward_bytes_total", {{"direction", direction_label(key.second)}}, double(s.bytes));
  t.family("cilium_drop_count_total", "counter", "Total dropped packets, tagged by drop reason and direction.");
  for (const auto& [key, s] : by_reason_dir)
    if (key.first != REASON_FORWARDED)
      t.sample("cilium_drop_count_total",
               {{"reason", datapath::drop_reason_text(key.first)}, {"direction", direction_label(key.second)}},
               double(s.packets));
  t.family("cilium_drop_bytes_total", "counter", "Total dropped bytes, tagged by drop reason and direction.");
  for (const auto& [key, s] : by_reason_dir)
    if (key.first != REASON_FORWARDED)
      t.sample("cilium_drop_bytes_total",
               {{"reason", datapath::drop_reason_text(key.first)}, {"direction", direction_label(key.second)}},
               double(s.bytes));

  size_t endpoints = 0, policies = 0;
  {
    Lock lock(mutex_);
    endpoints = pods_.size();
    policies = policy_controller_->desired().size();
  }
  t.family("cilium_policy", "gauge", "Number of policies currently loaded.");
  t.sample("cilium_policy", double(policies));
  t.family("cilium_endpoint", "gauge", "Number of endpoints managed by this agent.");
  t.sample("cilium_endpoint", double(endpoints));
  t.family("cilium_identity", "gauge", "Number of pod identities in use.");
  t.sample("cilium_identity", {{"type", "pod"}}, double(identities_->pod_identity_count()));
  t.family("cilium_bpf_map_pressure", "gauge", "Fill ratio of a BPF map (0..1).");
  for (const auto& m : datapath_->map_pressure())
    t.sample("cilium_bpf_map_pressure", {{"map_name", m.name}},
             m.max_entries ? double(m.entries) / double(m.max_entries) : 0.0);
  t.family("hubble_lost_events_total", "counter", "Events the datapath could not report because the ring buffer was full.");
  t.sample("hubble_lost_events_total", {{"source", "ring_buffer"}}, double(lost_events()));
  flow_metrics_.render(t);
  t.family("pilus_conntrack_gc_deleted_total", "counter", "Expired conntrack entries deleted by the agent's GC.");
  t.sample("pilus_conntrack_gc_deleted_total", double(ct_gc_deleted_.load()));
  if (proxy_) {
    http_metrics_.render(t, proxy_->stats());
    auto l7 = proxy_->policy();
    t.family("cilium_proxy_redirects", "gauge", "Policy map entries that redirect to the L7 proxy.");
    t.sample("cilium_proxy_redirects", {{"proxy_type", "http"}}, double(l7 ? l7->redirect_entries() : 0));
  }
  process_metrics(t);
  Lock lock(mutex_);
  return t.text() + service_controller_->metrics_text();
}

}  // namespace pilus::agent
