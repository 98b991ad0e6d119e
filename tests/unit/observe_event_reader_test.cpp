// EventReader: the record -> ring path with crafted bytes, and start/stop/lost counting on real BPF maps.
#include "observe/event_reader.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <netinet/in.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>

#include "abi/drop_reasons.h"
#include "abi/events.h"
#include "abi/metrics.h"
#include "common/error.h"
#include "endpoint/ipv4.h"

namespace pilus::observe {
namespace {

class NoPods : public EndpointResolver {
 public:
  std::optional<EndpointInfo> by_ip(uint32_t) const override { return std::nullopt; }
  std::vector<std::string> labels_of(uint32_t) const override { return {}; }
};

flow_event drop_event(uint16_t dport) {
  flow_event e;
  std::memset(&e, 0, sizeof(e));
  e.timestamp_ns = 1'000'000'000;
  e.type = EVENT_DROP;
  e.reason = DROP_POLICY_DENIED;
  e.dir = METRIC_INGRESS;
  e.proto = IPPROTO_TCP;
  e.saddr = endpoint::parse_ipv4("10.244.0.5").network_order();
  e.daddr = endpoint::parse_ipv4("10.244.0.6").network_order();
  e.sport = htons(40000);
  e.dport = htons(dport);
  e.src_identity = 300;
  e.dst_identity = 301;
  e.tcp_flags = 0x02;
  return e;
}

// A map fd closed with the test.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

TEST(ObserveEventReader, RecordsGoThroughTheDecoderIntoTheRing) {
  NoPods resolver;
  FlowDecoder decoder(resolver, "node-1");
  FlowRing ring(16);
  EventReader reader(-1, -1, decoder, ring);
  std::vector<uint16_t> seen;
  reader.on_flow([&](const Flow& f) { seen.push_back(f.destination.port); });

  flow_event e = drop_event(80);
  EXPECT_TRUE(reader.handle_record(&e, sizeof(e)));
  e = drop_event(443);
  EXPECT_TRUE(reader.handle_record(&e, sizeof(e)));
  EXPECT_FALSE(reader.handle_record(&e, sizeof(e) / 2));

  EXPECT_EQ(reader.decoded(), 2u);
  EXPECT_EQ(reader.decode_errors(), 1u);
  EXPECT_EQ(reader.lost_events(), 0u) << "no lost map";
  EXPECT_EQ(seen, (std::vector<uint16_t>{80, 443}));
  auto snap = ring.snapshot();
  ASSERT_EQ(snap.flows.size(), 2u);
  EXPECT_EQ(snap.flows[0].flow->verdict, Verdict::Dropped);
  EXPECT_EQ(snap.flows[0].flow->drop_reason, DROP_POLICY_DENIED);
  EXPECT_EQ(snap.flows[1].flow->destination.port, 443);
  EXPECT_FALSE(reader.running());
  EXPECT_THROW(reader.start(), pilus::Error) << "no ring buffer map to read";
}

TEST(ObserveEventReader, StartsAndStopsOnARealRingBuffer) {
  Fd events;
  events.fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "events", 0, 0, 1 << 16, nullptr);
  if (events.fd < 0) GTEST_SKIP() << "cannot create a BPF ring buffer here (needs root): " << strerror(errno);

  NoPods resolver;
  FlowDecoder decoder(resolver, "node-1");
  FlowRing ring;
  {
    EventReader reader(events.fd, -1, decoder, ring);
    reader.start();
    EXPECT_TRUE(reader.running());
    EXPECT_THROW(reader.start(), pilus::Error);
    std::this_thread::sleep_for(std::chrono::milliseconds(150));  // at least one poll round
    auto begin = std::chrono::steady_clock::now();
    reader.stop();
    EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(2)) << "poll wakes every 100 ms";
    EXPECT_FALSE(reader.running());
    reader.stop();  // idempotent
    // A stopped reader can be started again on the same map.
    reader.start();
    EXPECT_TRUE(reader.running());
  }  // the destructor stops it
  EXPECT_EQ(ring.stats().total_seen, 0u);
  EXPECT_EQ(decoder.decode_errors(), 0u);
}

// A hand-assembled tc program that copies one fixed flow_event into the ring buffer per run: the
// kernel is the only writer of a BPF ring, so this is how a unit test gets records into one.
int load_emitter(int ringbuf_fd, const flow_event& e) {
  static_assert(sizeof(flow_event) % 8 == 0, "copied to the stack in 8-byte words");
  constexpr int kSize = sizeof(flow_event);
  uint64_t words[kSize / 8];
  std::memcpy(words, &e, kSize);
  std::vector<bpf_insn> p;
  auto insn = [&](uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    bpf_insn i{};
    i.code = code;
    i.dst_reg = dst;
    i.src_reg = src;
    i.off = off;
    i.imm = imm;
    p.push_back(i);
  };
  for (int w = 0; w < kSize / 8; ++w) {
    insn(BPF_LD | BPF_DW | BPF_IMM, 1, 0, 0, static_cast<int32_t>(words[w] & 0xffffffffu));  // r1 = word
    insn(0, 0, 0, 0, static_cast<int32_t>(words[w] >> 32));
    insn(BPF_STX | BPF_DW | BPF_MEM, 10, 1, static_cast<int16_t>(-kSize + 8 * w), 0);  // *(fp - size + 8w) = r1
  }
  insn(BPF_LD | BPF_DW | BPF_IMM, 1, BPF_PSEUDO_MAP_FD, 0, ringbuf_fd);  // r1 = &ringbuf
  insn(0, 0, 0, 0, 0);
  insn(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0);  // r2 = fp
  insn(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -kSize);  // r2 -= size
  insn(BPF_ALU64 | BPF_MOV | BPF_K, 3, 0, 0, kSize);   // r3 = size
  insn(BPF_ALU64 | BPF_MOV | BPF_K, 4, 0, 0, 0);       // r4 = flags 0
  insn(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_ringbuf_output);
  insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0);  // return TC_ACT_OK
  insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  return bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "emit_event", "GPL", p.data(), p.size(), nullptr);
}

TEST(ObserveEventReader, PollingThreadDecodesWhatTheKernelWrites) {
  Fd events;
  events.fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "events", 0, 0, 1 << 16, nullptr);
  if (events.fd < 0) GTEST_SKIP() << "cannot create a BPF ring buffer here (needs root): " << strerror(errno);
  Fd prog;
  prog.fd = load_emitter(events.fd, drop_event(8080));
  if (prog.fd < 0) GTEST_SKIP() << "cannot load a BPF program here: " << strerror(errno);

  NoPods resolver;
  FlowDecoder decoder(resolver, "node-1");
  FlowRing ring;
  EventReader reader(events.fd, -1, decoder, ring);
  reader.start();
  uint8_t frame[64] = {};
  for (int i = 0; i < 3; ++i) {
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = sizeof(frame), .repeat = 1);
    ASSERT_EQ(bpf_prog_test_run_opts(prog.fd, &opts), 0) << strerror(errno);
  }
  uint64_t after = 0;
  std::vector<SequencedFlow> got;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (got.size() < 3 && std::chrono::steady_clock::now() < deadline) {
    auto batch = ring.wait_for_new(after, std::chrono::milliseconds(200));
    got.insert(got.end(), batch.flows.begin(), batch.flows.end());
    after = batch.last_seq;
  }
  reader.stop();
  ASSERT_EQ(got.size(), 3u);
  for (const auto& s : got) {
    EXPECT_EQ(s.flow->destination.port, 8080);
    EXPECT_EQ(s.flow->drop_reason, DROP_POLICY_DENIED);
  }
  EXPECT_EQ(reader.decoded(), 3u);
  EXPECT_EQ(reader.decode_errors(), 0u);
}

TEST(ObserveEventReader, SumsLostEventsOverCpus) {
  Fd lost;
  lost.fd = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "events_lost", sizeof(uint32_t), sizeof(uint64_t), 1, nullptr);
  if (lost.fd < 0) GTEST_SKIP() << "cannot create a BPF map here (needs root): " << strerror(errno);
  int cpus = libbpf_num_possible_cpus();
  ASSERT_GT(cpus, 0);
  std::vector<uint64_t> values(static_cast<size_t>(cpus));
  uint64_t expected = 0;
  for (int i = 0; i < cpus; ++i) {
    values[static_cast<size_t>(i)] = static_cast<uint64_t>(i) + 3;
    expected += static_cast<uint64_t>(i) + 3;
  }
  uint32_t key = 0;
  ASSERT_EQ(bpf_map_update_elem(lost.fd, &key, values.data(), BPF_ANY), 0) << strerror(errno);

  NoPods resolver;
  FlowDecoder decoder(resolver, "node-1");
  FlowRing ring;
  EventReader reader(-1, lost.fd, decoder, ring);
  EXPECT_EQ(reader.lost_events(), expected);
}

}  // namespace
}  // namespace pilus::observe
