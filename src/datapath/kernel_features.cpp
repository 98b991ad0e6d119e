#include "datapath/kernel_features.h"

#include <bpf/libbpf.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "common/error.h"

namespace pilus::datapath {

std::vector<KernelFeature> probe_kernel_features() {
  std::vector<KernelFeature> out;
  auto prog = [&](const char* name, bpf_prog_type type, bool required) {
    out.push_back({std::string("prog_type ") + name, required, libbpf_probe_bpf_prog_type(type, nullptr) == 1});
  };
  auto map = [&](const char* name, bpf_map_type type, bool required) {
    out.push_back({std::string("map_type ") + name, required, libbpf_probe_bpf_map_type(type, nullptr) == 1});
  };
  // libbpf reports a helper as supported whenever the verifier did not name it unknown, which is
  // also the case when the program type itself cannot be loaded: probe that first.
  auto helper = [&](const char* name, bpf_prog_type type, bpf_func_id id, bool required) {
    bool available = libbpf_probe_bpf_prog_type(type, nullptr) == 1 && libbpf_probe_bpf_helper(type, id, nullptr) == 1;
    out.push_back({std::string("helper ") + name, required, available});
  };
  prog("sched_cls", BPF_PROG_TYPE_SCHED_CLS, true);
  prog("xdp", BPF_PROG_TYPE_XDP, false);
  prog("cgroup_sock_addr", BPF_PROG_TYPE_CGROUP_SOCK_ADDR, true);  // socket-level service LB
  prog("sock_ops", BPF_PROG_TYPE_SOCK_OPS, false);
  prog("sk_msg", BPF_PROG_TYPE_SK_MSG, false);
  map("hash", BPF_MAP_TYPE_HASH, true);
  map("lpm_trie", BPF_MAP_TYPE_LPM_TRIE, true);
  map("lru_hash", BPF_MAP_TYPE_LRU_HASH, true);
  map("percpu_hash", BPF_MAP_TYPE_PERCPU_HASH, true);
  map("percpu_array", BPF_MAP_TYPE_PERCPU_ARRAY, true);
  map("ringbuf", BPF_MAP_TYPE_RINGBUF, true);
  map("hash_of_maps", BPF_MAP_TYPE_HASH_OF_MAPS, false);
  helper("bpf_redirect", BPF_PROG_TYPE_SCHED_CLS, BPF_FUNC_redirect, true);
  helper("bpf_skb_store_bytes", BPF_PROG_TYPE_SCHED_CLS, BPF_FUNC_skb_store_bytes, true);
  helper("bpf_ringbuf_reserve", BPF_PROG_TYPE_SCHED_CLS, BPF_FUNC_ringbuf_reserve, true);
  helper("bpf_ktime_get_ns", BPF_PROG_TYPE_SCHED_CLS, BPF_FUNC_ktime_get_ns, true);
  helper("bpf_redirect_peer", BPF_PROG_TYPE_SCHED_CLS, BPF_FUNC_redirect_peer, false);
  helper("bpf_sk_assign", BPF_PROG_TYPE_SCHED_CLS, BPF_FUNC_sk_assign, false);
  helper("bpf_l3_csum_replace", BPF_PROG_TYPE_SCHED_CLS, BPF_FUNC_l3_csum_replace, true);  // service DNAT
  helper("bpf_l4_csum_replace", BPF_PROG_TYPE_SCHED_CLS, BPF_FUNC_l4_csum_replace, true);
  out.push_back({"btf /sys/kernel/btf/vmlinux", false, access("/sys/kernel/btf/vmlinux", R_OK) == 0});
  return out;
}

void require_kernel_features(const std::vector<KernelFeature>& features) {
  std::string missing;
  for (const auto& f : features) {
    if (f.required && !f.available) missing += (missing.empty() ? "" : ", ") + f.name;
  }
  if (!missing.empty())
    fail("this kernel lacks BPF features pilus needs: {} (see `pilus status` on a working node for the full list)",
         missing);
}

void require_privileges() {
  if (geteuid() != 0)
    fail("pilus agent must run as root: it loads BPF programs, creates network namespaces and links");
  // Root without capabilities (a restricted container) fails later in obscure ways: check now.
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("CapEff:", 0) != 0) continue;
    unsigned long long caps = std::stoull(line.substr(7), nullptr, 16);
    const struct {
      int bit;
      const char* name;
    } needed[] = {{12, "CAP_NET_ADMIN"}, {21, "CAP_SYS_ADMIN"}};
    for (auto n : needed) {
      if (!(caps & (1ULL << n.bit))) fail("pilus agent needs {} (effective capabilities: {})", n.name, line.substr(7));
    }
  }
}

}  // namespace pilus::datapath
