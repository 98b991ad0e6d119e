// DatapathTest: map seeding, BPF_PROG_TEST_RUN and readers for counters, conntrack and events.
#include "datapath_fixture.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <time.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "abi/endpoint.h"
#include "abi/identity.h"
#include "abi/ipcache.h"
#include "common/error.h"

namespace pilus::test {
namespace {

ct_key key_of(const Tuple& t, ct_scope scope) {
  ct_key key{};
  key.saddr = ipv4_address(t.saddr);
  key.daddr = ipv4_address(t.daddr);
  key.sport = htons(t.sport);
  key.dport = htons(t.dport);
  key.proto = t.proto;
  key.scope = static_cast<uint8_t>(scope);
  return key;
}

policy_key policy_key_for(const Pod& pod, uint8_t dir, const PolicyMatch& m) {
  policy_key key{};
  key.endpoint_id = pod.endpoint_id;
  key.direction = dir;
  key.identity = m.peer_identity;
  key.peer_kind = m.peer_kind;
  if (!m.proto) {
    key.prefixlen = POLICY_PREFIX_ANY_PROTO;
    return key;
  }
  key.protocol = *m.proto;
  key.prefixlen = POLICY_PREFIX_ANY_PORT + m.port_bits;
  uint16_t mask = m.port_bits == 0 ? 0 : static_cast<uint16_t>(0xffff << (16 - m.port_bits));
  key.dport = htons(static_cast<uint16_t>(m.dport & mask));
  return key;
}

std::string dotted(uint32_t be_addr) {
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &be_addr, buf, sizeof(buf));
  return buf;
}

}  // namespace

PacketBuilder Pod::send_to(std::string_view daddr) const {
  PacketBuilder b;
  b.eth(pod_mac, host_mac).ipv4(ip, daddr);
  return b;
}

PacketBuilder Pod::receive_from(std::string_view saddr) const {
  PacketBuilder b;
  b.eth(host_mac, pod_mac).ipv4(saddr, ip);
  return b;
}

void DatapathTest::SetUp() { datapath_ = std::make_unique<datapath::Datapath>(datapath_config()); }

void DatapathTest::TearDown() { datapath_.reset(); }

Pod DatapathTest::add_local_pod(std::string_view ip, int ifindex, uint32_t identity, uint16_t endpoint_id) {
  auto hi = static_cast<uint8_t>(endpoint_id >> 8);
  auto lo = static_cast<uint8_t>(endpoint_id);
  Pod pod{std::string(ip), ifindex, identity, endpoint_id, {0x02, 0, 0, 0x0e, hi, lo}, {0x06, 0, 0, 0x0e, hi, lo}};

  endpoint_info info{};
  info.ifindex = static_cast<uint32_t>(ifindex);
  info.identity = identity;
  info.endpoint_id = endpoint_id;
  std::memcpy(info.host_mac, pod.host_mac.data(), sizeof(info.host_mac));
  std::memcpy(info.pod_mac, pod.pod_mac.data(), sizeof(info.pod_mac));
  datapath_->endpoints().update(endpoint_key{ipv4_address(ip)}, info);
  datapath_->ipcache().update(ipcache_key{32, ipv4_address(ip)}, ipcache_value{identity, IPCACHE_F_LOCAL_POD});
  datapath_->bump_policy_revision();
  return pod;
}

void DatapathTest::add_host_address(std::string_view ip) {
  datapath_->ipcache().update(ipcache_key{32, ipv4_address(ip)}, ipcache_value{IDENTITY_HOST, IPCACHE_F_HOST});
  datapath_->bump_policy_revision();
}

void DatapathTest::enforce_policy(const Pod& pod, uint8_t dir) {
  auto endpoints = datapath_->endpoints();
  endpoint_key key{ipv4_address(pod.ip)};
  std::optional<endpoint_info> info = endpoints.lookup(key);
  if (!info) fail("enforce_policy: {} is not a seeded pod", pod.ip);
  info->flags |= dir == METRIC_INGRESS ? ENDPOINT_F_INGRESS_ENFORCED : ENDPOINT_F_EGRESS_ENFORCED;
  endpoints.update(key, *info);
  datapath_->bump_policy_revision();
}

void DatapathTest::allow(const Pod& pod, uint8_t dir, const PolicyMatch& match) {
  policy_key key = policy_key_for(pod, dir, match);
  policy_entry entry{};
  entry.match_type = policy_match_type_of(&key);
  entry.rule_id = match.rule_id;
  datapath_->policy().update(key, entry);
  datapath_->bump_policy_revision();
}

void DatapathTest::deny(const Pod& pod, uint8_t dir, const PolicyMatch& match) {
  policy_key key = policy_key_for(pod, dir, match);
  policy_entry entry{};
  entry.flags = POLICY_F_DENY;
  entry.match_type = policy_match_type_of(&key);
  entry.rule_id = match.rule_id;
  datapath_->policy().update(key, entry);
  datapath_->bump_policy_revision();
}

void DatapathTest::default_deny_ref(const Pod& pod, uint8_t dir, uint32_t ref) {
  policy_key key{};
  key.prefixlen = POLICY_PREFIX_ANY_PROTO;
  key.endpoint_id = pod.endpoint_id;
  key.direction = dir;
  key.peer_kind = POLICY_PEER_DEFAULT_DENY;
  policy_entry entry{};
  entry.rule_id = ref;
  datapath_->policy().update(key, entry);
  datapath_->bump_policy_revision();
}

void DatapathTest::add_endpoint_flags(const Pod& pod, uint16_t flags) {
  auto endpoints = datapath_->endpoints();
  endpoint_key key{ipv4_address(pod.ip)};
  std::optional<endpoint_info> info = endpoints.lookup(key);
  if (!info) fail("add_endpoint_flags: {} is not a seeded pod", pod.ip);
  info->flags |= flags;
  endpoints.update(key, *info);
  datapath_->bump_policy_revision();
}

void DatapathTest::revoke(const Pod& pod, uint8_t dir, const PolicyMatch& match) {
  if (!datapath_->policy().erase(policy_key_for(pod, dir, match))) fail("revoke: no such policy entry");
  datapath_->bump_policy_revision();
}

RunResult DatapathTest::run(int prog_fd, const std::vector<uint8_t>& packet, int ifindex, uint32_t repeat,
                             uint32_t mark) const {
  // Room for a program that grows the frame; the kernel fails with ENOSPC otherwise.
  std::vector<uint8_t> out(packet.size() + 512);
  __sk_buff skb{};
  skb.ifindex = static_cast<uint32_t>(ifindex);
  skb.mark = mark;

  bpf_test_run_opts opts{};
  opts.sz = sizeof(opts);
  opts.data_in = packet.data();
  opts.data_size_in = static_cast<uint32_t>(packet.size());
  opts.data_out = out.data();
  opts.data_size_out = static_cast<uint32_t>(out.size());
  opts.ctx_in = &skb;
  opts.ctx_size_in = sizeof(skb);
  opts.repeat = static_cast<int>(repeat);
  if (bpf_prog_test_run_opts(prog_fd, &opts) < 0) {
    int e = errno;
    throw TestRunRefused(fmt::format("BPF_PROG_TEST_RUN of a {}-byte frame on ifindex {}: {}", packet.size(), ifindex,
                                     std::strerror(e)),
                         e);
  }
  out.resize(opts.data_size_out);
  return {opts.retval, std::move(out)};
}

RunResult DatapathTest::run_from_pod(const std::vector<uint8_t>& packet, int ifindex, uint32_t repeat) const {
  return run(datapath_->from_pod_fd(), packet, ifindex, repeat);
}

RunResult DatapathTest::run_to_pod(const std::vector<uint8_t>& packet, int ifindex, uint32_t repeat,
                                   uint32_t mark) const {
  return run(datapath_->to_pod_fd(), packet, ifindex, repeat, mark);
}

metrics_value DatapathTest::counter(uint16_t endpoint_id, uint8_t reason, uint8_t dir) const {
  metrics_value sum{};
  for (const metrics_value& v : datapath_->metrics().lookup(metrics_key{endpoint_id, reason, dir})) {
    sum.packets += v.packets;
    sum.bytes += v.bytes;
  }
  return sum;
}

uint64_t DatapathTest::all_counted_packets() const {
  uint64_t packets = 0;
  auto metrics = datapath_->metrics();
  for (const metrics_key& key : metrics.keys())
    for (const metrics_value& v : metrics.lookup(key)) packets += v.packets;
  return packets;
}

std::optional<ct_entry> DatapathTest::ct_entry_for(const Tuple& tuple, ct_scope scope) const {
  return datapath_->conntrack().lookup(key_of(tuple, scope));
}

void DatapathTest::put_ct_entry(const Tuple& tuple, ct_scope scope, const ct_entry& entry) const {
  datapath_->conntrack().update(key_of(tuple, scope), entry);
}

size_t DatapathTest::ct_entry_count() const { return datapath_->conntrack().count(); }

std::vector<flow_event> DatapathTest::drain_events() const {
  struct Sink {
    std::vector<flow_event> events;
    std::vector<size_t> odd_sizes;
  } sink;
  auto on_record = [](void* ctx, void* data, size_t size) -> int {
    auto* s = static_cast<Sink*>(ctx);
    if (size != sizeof(flow_event)) {
      s->odd_sizes.push_back(size);
      return 0;
    }
    flow_event e;
    std::memcpy(&e, data, sizeof(e));
    s->events.push_back(e);
    return 0;
  };
  ring_buffer* rb = ring_buffer__new(datapath_->events_fd(), on_record, &sink, nullptr);
  if (!rb) throw system_error("opening the events ring buffer", errno);
  int n = ring_buffer__consume(rb);
  ring_buffer__free(rb);
  if (n < 0) throw system_error("reading the events ring buffer", -n);
  for (size_t size : sink.odd_sizes)
    ADD_FAILURE() << "events ring held a " << size << "-byte record; flow_event is " << sizeof(flow_event);
  return sink.events;
}

uint64_t DatapathTest::events_lost() const {
  std::vector<uint64_t> per_cpu(static_cast<size_t>(libbpf_num_possible_cpus()));
  uint32_t zero = 0;
  if (bpf_map_lookup_elem(datapath_->events_lost_fd(), &zero, per_cpu.data()) < 0)
    throw system_error("reading events_lost", errno);
  uint64_t sum = 0;
  for (uint64_t v : per_cpu) sum += v;
  return sum;
}

std::optional<int> DatapathTest::second_device_ifindex() {
  std::optional<int> found;
  struct if_nameindex* all = if_nameindex();
  if (!all) return found;
  for (struct if_nameindex* i = all; i->if_index != 0; ++i) {
    if (static_cast<int>(i->if_index) != LOOPBACK_IFINDEX && std::strcmp(i->if_name, "lo") != 0) {
      found = static_cast<int>(i->if_index);
      break;
    }
  }
  if_freenameindex(all);
  return found;
}

uint32_t DatapathTest::mono_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint32_t>(ts.tv_sec);
}

std::string describe(const flow_event& e) {
  return fmt::format(
      "{{type {} reason {} dir {} proto {} {}:{} -> {}:{} identity {} -> {} endpoint {} tcp_flags {:#x} icmp {}/{} "
      "reply {} ifindex {} length {}}}",
      e.type, e.reason, e.dir, e.proto, dotted(e.saddr), ntohs(e.sport), dotted(e.daddr), ntohs(e.dport),
      e.src_identity, e.dst_identity, e.endpoint_id, e.tcp_flags, e.icmp_type, e.icmp_code, e.is_reply, e.ifindex,
      e.length);
}

std::string describe(const ct_entry& e) {
  return fmt::format(
      "{{fwd {}p/{}B rev {}p/{}B expires {} created {} identity {} -> {} tcp_flags {:#x}/{:#x} flags {:#x}}}",
      e.packets_fwd, e.bytes_fwd, e.packets_rev, e.bytes_rev, e.expires, e.created, e.src_identity, e.dst_identity,
      e.tcp_flags_fwd, e.tcp_flags_rev, e.flags);
}

}  // namespace pilus::test

void PrintTo(const flow_event& e, std::ostream* os) { *os << pilus::test::describe(e); }
void PrintTo(const ct_entry& e, std::ostream* os) { *os << pilus::test::describe(e); }
