// FlowRing: order, --last, overwrite counting, and followers that never silently miss a flow.
#include "observe/flow_ring.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace pilus::observe {
namespace {

using namespace std::chrono_literals;

// Flows told apart by their source port (= their push order here).
Flow numbered(uint16_t n, Verdict v = Verdict::Forwarded) {
  Flow f;
  f.l4.protocol = L4Protocol::Tcp;
  f.source.port = n;
  f.verdict = v;
  return f;
}

std::vector<uint16_t> ports(const std::vector<SequencedFlow>& flows) {
  std::vector<uint16_t> out;
  for (const auto& s : flows) out.push_back(s.flow->source.port);
  return out;
}

TEST(ObserveRing, SnapshotIsOldestFirstWithLastN) {
  FlowRing ring(8);
  for (uint16_t i = 1; i <= 5; ++i) EXPECT_EQ(ring.push(numbered(i)), i);
  auto all = ring.snapshot();
  EXPECT_EQ(ports(all.flows), (std::vector<uint16_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(all.flows.front().seq, 1u);
  EXPECT_EQ(all.last_seq, 5u);
  EXPECT_EQ(ports(ring.snapshot(FlowFilter(), 2).flows), (std::vector<uint16_t>{4, 5}));
  EXPECT_EQ(ports(ring.snapshot(FlowFilter(), 100).flows).size(), 5u);
}

TEST(ObserveRing, SnapshotFiltersBeforeTakingTheLastN) {
  FlowRing ring;
  for (uint16_t i = 1; i <= 10; ++i) ring.push(numbered(i, i % 3 == 0 ? Verdict::Dropped : Verdict::Forwarded));
  auto dropped = FlowFilter::parse({{"verdict", "DROPPED"}});
  EXPECT_EQ(ports(ring.snapshot(dropped).flows), (std::vector<uint16_t>{3, 6, 9}));
  EXPECT_EQ(ports(ring.snapshot(dropped, 2).flows), (std::vector<uint16_t>{6, 9}));
  EXPECT_EQ(ring.snapshot(dropped, 2).last_seq, 10u);
}

TEST(ObserveRing, OverwriteKeepsTheNewestAndCountsTheRest) {
  FlowRing ring(4);
  for (uint16_t i = 1; i <= 10; ++i) ring.push(numbered(i));
  auto stats = ring.stats();
  EXPECT_EQ(stats.total_seen, 10u);
  EXPECT_EQ(stats.overwritten, 6u);
  EXPECT_EQ(stats.size, 4u);
  EXPECT_EQ(stats.capacity, 4u);
  auto snap = ring.snapshot();
  EXPECT_EQ(ports(snap.flows), (std::vector<uint16_t>{7, 8, 9, 10}));
  EXPECT_EQ(snap.flows.front().seq, 7u);
  EXPECT_EQ(FlowRing(0).stats().capacity, 1u);
  EXPECT_EQ(FlowRing().stats().capacity, 4096u);
}

TEST(ObserveRing, FollowerIsToldWhatWasOverwritten) {
  FlowRing ring(4);
  for (uint16_t i = 1; i <= 10; ++i) ring.push(numbered(i));
  auto batch = ring.wait_for_new(2, 0ms);
  EXPECT_EQ(batch.missed, 4u);  // 3, 4, 5, 6 were overwritten
  EXPECT_EQ(ports(batch.flows), (std::vector<uint16_t>{7, 8, 9, 10}));
  EXPECT_EQ(batch.last_seq, 10u);

  auto up_to_date = ring.wait_for_new(8, 0ms);
  EXPECT_EQ(up_to_date.missed, 0u);
  EXPECT_EQ(ports(up_to_date.flows), (std::vector<uint16_t>{9, 10}));
}

TEST(ObserveRing, WaitTimesOutEmptyAndWakesOnPush) {
  FlowRing ring;
  auto start = std::chrono::steady_clock::now();
  auto empty = ring.wait_for_new(0, 50ms);
  EXPECT_TRUE(empty.flows.empty());
  EXPECT_EQ(empty.last_seq, 0u);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 45ms);

  std::thread writer([&] {
    std::this_thread::sleep_for(20ms);
    ring.push(numbered(1));
  });
  auto batch = ring.wait_for_new(0, 5s);
  writer.join();
  ASSERT_EQ(batch.flows.size(), 1u);
  EXPECT_EQ(batch.flows[0].seq, 1u);
}

TEST(ObserveRing, CloseWakesFollowers) {
  FlowRing ring;
  std::thread closer([&] {
    std::this_thread::sleep_for(20ms);
    ring.close();
  });
  auto start = std::chrono::steady_clock::now();
  auto batch = ring.wait_for_new(0, 10s);
  closer.join();
  EXPECT_TRUE(batch.flows.empty());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  // Closed: no more waiting.
  start = std::chrono::steady_clock::now();
  ring.wait_for_new(0, 10s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

// A writer pushing flat out, a follower and a snapshot reader at the same time: the follower sees
// every sequence number exactly once, either as a flow or counted as missed.
TEST(ObserveRing, ConcurrentFollowerMissesNothingSilently) {
  constexpr uint64_t kFlows = 200000;
  FlowRing ring(256);
  std::atomic<bool> done{false};

  uint64_t received = 0, missed = 0, expected_next = 1;
  bool in_order = true;
  std::thread follower([&] {
    uint64_t after = 0;
    while (after < kFlows) {
      auto batch = ring.wait_for_new(after, 100ms);
      missed += batch.missed;
      uint64_t next = after + 1 + batch.missed;
      for (const auto& s : batch.flows) {
        if (s.seq != next || s.flow->source.port != static_cast<uint16_t>(s.seq)) in_order = false;
        ++next;
        ++received;
      }
      expected_next = next;
      after = batch.last_seq;
    }
  });
  std::thread reader([&] {
    while (!done) {
      auto snap = ring.snapshot(FlowFilter(), 50);
      for (size_t i = 1; i < snap.flows.size(); ++i) {
        if (snap.flows[i].seq != snap.flows[i - 1].seq + 1) in_order = false;
      }
    }
  });
  for (uint64_t i = 1; i <= kFlows; ++i) ring.push(numbered(static_cast<uint16_t>(i)));
  follower.join();
  done = true;
  reader.join();

  EXPECT_TRUE(in_order);
  EXPECT_EQ(received + missed, kFlows);
  EXPECT_EQ(expected_next, kFlows + 1);
  EXPECT_EQ(ring.stats().total_seen, kFlows);
  EXPECT_EQ(ring.stats().overwritten, kFlows - 256);
}

}  // namespace
}  // namespace pilus::observe
