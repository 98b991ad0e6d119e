#include "datapath/datapath.h"

#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdarg>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "pod_bpf.skel.h"

namespace pilus::datapath {
namespace fs = std::filesystem;

static_assert(sizeof(ipcache_key) == 8);
static_assert(sizeof(endpoint_info) == 24);
static_assert(sizeof(ct_key) == 16);
static_assert(sizeof(ct_entry) == 56);
static_assert(sizeof(metrics_key) == 4);
static_assert(sizeof(policy_key) == 16);
static_assert(sizeof(policy_entry) == 8);
static_assert(sizeof(lb_service_key) == 8);
static_assert(sizeof(lb_service) == 16);
static_assert(sizeof(lb_backend) == 8);
static_assert(sizeof(lb_affinity_key) == 16);
static_assert(sizeof(lb_nat_key) == 16);
static_assert(sizeof(lb_nat_value) == 16);
static_assert(sizeof(proxy_config) == 8);
static_assert(sizeof(proxy_flow_key) == 16);
static_assert(sizeof(proxy_flow) == 8);
static_assert(sizeof(proxy_origin_key) == 8);
static_assert(sizeof(proxy_origin) == 20);

void ensure_bpffs() {
  struct statfs st {};
  if (statfs("/sys/fs/bpf", &st) == 0 && st.f_type == BPF_FS_MAGIC) return;
  mkdir("/sys/fs/bpf", 0755);
  if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") < 0)
    throw system_error("mounting bpffs at /sys/fs/bpf", errno);
}

namespace {

void pin_program(bpf_program* prog, const std::string& path) {
  // A pin is only a name; replacing it never affects attached programs.
  unlink(path.c_str());
  if (bpf_program__pin(prog, path.c_str()) < 0) throw system_error("pinning " + path, errno);
}

}  // namespace

namespace {

// libbpf's messages go to the agent's log. Re-creating the clsact qdisc that an
// earlier agent made is expected on every restart: that one kernel complaint is noise.
int libbpf_log(enum libbpf_print_level level, const char* format, va_list args) {
  char buf[2048];
  vsnprintf(buf, sizeof(buf), format, args);
  std::string msg(buf);
  while (!msg.empty() && msg.back() == '\n') msg.pop_back();
  if (msg.find("Exclusivity flag on") != std::string::npos) return 0;
  if (level == LIBBPF_WARN)
    spdlog::warn("libbpf: {}", msg);
  else
    spdlog::debug("libbpf: {}", msg);
  return 0;
}

}  // namespace

Datapath::Datapath(DatapathConfig config) : config_(std::move(config)) {
  libbpf_set_print(libbpf_log);
  skel_ = pod_bpf__open();
  if (!skel_) throw system_error("opening the pod BPF object", errno);
  try {
    bpf_map__set_max_entries(skel_->maps.conntrack, config_.ct_max);
    if (config_.policy_max == 0) fail("the policy map size must be at least 1");
    bpf_map__set_max_entries(skel_->maps.policy, config_.policy_max);
    uint32_t ring = config_.events_ring_bytes;
    if (ring < static_cast<uint32_t>(getpagesize()) || (ring & (ring - 1)) != 0)
      fail("the events ring buffer size must be a power of two of at least {} bytes, not {}", getpagesize(), ring);
    bpf_map__set_max_entries(skel_->maps.events, ring);
    skel_->rodata->ct_lifetime_tcp = config_.ct_lifetime_tcp;
    skel_->rodata->ct_lifetime_nontcp = config_.ct_lifetime_nontcp;
    bpf_map__set_max_entries(skel_->maps.lb_services, config_.lb_max_services);
    bpf_map__set_max_entries(skel_->maps.lb_maglev, config_.lb_max_services * config_.maglev_size);
    skel_->rodata->lb_maglev_size = config_.maglev_size;
    skel_->rodata->lb_random = config_.lb_random;
    if (config_.pin) {
      ensure_bpffs();
      fs::create_directories(config_.bpf_root);
      bpf_map* map;
      bpf_object__for_each_map(map, skel_->obj) {
        if (bpf_map__is_internal(map)) continue;
        std::string path = config_.bpf_root + "/" + bpf_map__name(map);
        if (access(path.c_str(), F_OK) == 0) reused_ = true;
        bpf_map__set_pin_path(map, path.c_str());
      }
    }
    int err = pod_bpf__load(skel_);
    if (err)
      throw system_error(
          "loading the pod BPF programs (a pinned map with another layout under " + config_.bpf_root +
              " also fails here: run `pilus cleanup`)",
          -err);
    // Pinned CIDRs from an agent that had no count map must not be hidden by a count of 0.
    policy_cidrs_count().update(0, static_cast<uint32_t>(policy_cidrs().count()));
    if (config_.pin) {
      pin_program(skel_->progs.from_pod, config_.bpf_root + "/from_pod");
      pin_program(skel_->progs.to_pod, config_.bpf_root + "/to_pod");
    }
  } catch (...) {
    pod_bpf__destroy(skel_);
    throw;
  }
}

Datapath::~Datapath() { pod_bpf__destroy(skel_); }

IpcacheBpfMap Datapath::ipcache() const { return {bpf_map__fd(skel_->maps.ipcache), "ipcache"}; }
EndpointsBpfMap Datapath::endpoints() const { return {bpf_map__fd(skel_->maps.endpoints), "endpoints"}; }
ConntrackBpfMap Datapath::conntrack() const { return {bpf_map__fd(skel_->maps.conntrack), "conntrack"}; }
MetricsMap Datapath::metrics() const { return {bpf_map__fd(skel_->maps.metrics), "metrics"}; }
PolicyBpfMap Datapath::policy() const { return {bpf_map__fd(skel_->maps.policy), "policy"}; }
IpcacheBpfMap Datapath::policy_cidrs() const { return {bpf_map__fd(skel_->maps.policy_cidrs), "policy_cidrs"}; }
PolicyRevisionMap Datapath::policy_revision() const {
  return {bpf_map__fd(skel_->maps.policy_revision), "policy_revision"};
}
void Datapath::bump_policy_revision() const {
  auto map = policy_revision();
  uint32_t next = map.lookup(0).value_or(0) + 1;
  map.update(0, next == 0 ? 1 : next);  // 0 means "never": the datapath caches nothing for it
}
PolicyCidrsCountMap Datapath::policy_cidrs_count() const {
  return {bpf_map__fd(skel_->maps.policy_cidrs_count), "policy_cidrs_count"};
}
ProxyConfigMap Datapath::proxy_config() const { return {bpf_map__fd(skel_->maps.proxy_config), "proxy_config"}; }
ProxyFlowsMap Datapath::proxy_flows() const { return {bpf_map__fd(skel_->maps.proxy_flows), "proxy_flows"}; }
ProxyOriginMap Datapath::proxy_origin() const { return {bpf_map__fd(skel_->maps.proxy_origin), "proxy_origin"}; }
size_t Datapath::policy_max_entries() const { return bpf_map__max_entries(skel_->maps.policy); }
LbServicesMap Datapath::lb_services() const { return {bpf_map__fd(skel_->maps.lb_services), "lb_services"}; }
LbBackendsMap Datapath::lb_backends() const { return {bpf_map__fd(skel_->maps.lb_backends), "lb_backends"}; }
LbMaglevMap Datapath::lb_maglev() const { return {bpf_map__fd(skel_->maps.lb_maglev), "lb_maglev"}; }
LbAffinityMap Datapath::lb_affinity() const { return {bpf_map__fd(skel_->maps.lb_affinity), "lb_affinity"}; }
LbNatMap Datapath::lb_nat() const { return {bpf_map__fd(skel_->maps.lb_nat), "lb_nat"}; }
uint32_t Datapath::lb_max_services() const { return bpf_map__max_entries(skel_->maps.lb_services); }
int Datapath::events_fd() const { return bpf_map__fd(skel_->maps.events); }
int Datapath::events_lost_fd() const { return bpf_map__fd(skel_->maps.events_lost); }
int Datapath::from_pod_fd() const { return bpf_program__fd(skel_->progs.from_pod); }
int Datapath::to_pod_fd() const { return bpf_program__fd(skel_->progs.to_pod); }

void Datapath::attach_to_pod_veth(int ifindex) const {
  struct Hook {
    bpf_tc_attach_point point;
    int prog_fd;
  };
  for (Hook h : {Hook{BPF_TC_INGRESS, from_pod_fd()}, Hook{BPF_TC_EGRESS, to_pod_fd()}}) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = h.point);
    int err = bpf_tc_hook_create(&hook);
    if (err && err != -EEXIST) throw system_error("creating clsact on ifindex " + std::to_string(ifindex), -err);
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = h.prog_fd, .flags = BPF_TC_F_REPLACE, .handle = 1, .priority = 1);
    err = bpf_tc_attach(&hook, &opts);
    if (err) throw system_error("attaching tc program on ifindex " + std::to_string(ifindex), -err);
  }
}

std::vector<MapPressure> Datapath::map_pressure() const {
  std::vector<MapPressure> out;
  auto add = [&](bpf_map* map, size_t entries) {
    out.push_back({bpf_map__name(map), entries, bpf_map__max_entries(map)});
  };
  add(skel_->maps.ipcache, ipcache().count());
  add(skel_->maps.endpoints, endpoints().count());
  add(skel_->maps.conntrack, conntrack().count());
  add(skel_->maps.metrics, metrics().keys().size());
  add(skel_->maps.policy, policy().count());
  add(skel_->maps.policy_cidrs, policy_cidrs().count());
  add(skel_->maps.lb_services, lb_services().count());
  add(skel_->maps.lb_backends, lb_backends().count());
  add(skel_->maps.lb_nat, lb_nat().count());
  add(skel_->maps.proxy_origin, proxy_origin().count());
  return out;
}

void Datapath::remove_pins(const std::string& bpf_root) {
  std::error_code ec;
  if (!fs::exists(bpf_root, ec)) return;
  fs::remove_all(bpf_root, ec);
  if (ec) throw Error("removing " + bpf_root + ": " + ec.message());
}

}  // namespace pilus::datapath
