// stream_flows: history (--last/--all), follow, lost-event lines, and ending when the client goes.
#include "observe/flow_stream.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include "observe/flow_json.h"

namespace pilus::observe {
namespace {

using namespace std::chrono_literals;

Flow numbered(uint16_t n) {
  Flow f;
  f.l4.protocol = L4Protocol::Udp;
  f.source.port = n;
  f.verdict = n % 2 ? Verdict::Forwarded : Verdict::Dropped;
  f.kind = EventKind::Trace;
  f.summary = "UDP";
  return f;
}

// What a client saw: source ports of flow lines, "lost:<SOURCE>:<n>" for lost-event lines.
struct Client {
  std::mutex mu;
  std::vector<std::string> seen;
  std::function<bool(const std::string&)> on_line = [](const std::string&) { return true; };
  std::function<bool()> on_empty = [] { return true; };

  ChunkWriter writer() {
    return [this](std::string_view chunk) {
      if (chunk.empty()) return on_empty();
      // A chunk holds whole lines only, one or many.
      EXPECT_EQ(chunk.back(), '\n');
      bool more = true;
      for (size_t start = 0, nl; more && (nl = chunk.find('\n', start)) != std::string_view::npos; start = nl + 1) {
        std::string entry;
        auto item = parse_stream_line(chunk.substr(start, nl - start));
        if (auto* f = std::get_if<Flow>(&item)) {
          entry = std::to_string(f->source.port);
        } else {
          const auto& l = std::get<LostEvents>(item);
          entry = "lost:" + std::string(to_string(l.source)) + ":" + std::to_string(l.count);
        }
        {
          std::lock_guard lock(mu);
          seen.push_back(entry);
        }
        more = on_line(entry);
      }
      return more;
    };
  }
  std::vector<std::string> lines() {
    std::lock_guard lock(mu);
    return seen;
  }
};

std::vector<std::string> range(int first, int last) {
  std::vector<std::string> out;
  for (int i = first; i <= last; ++i) out.push_back(std::to_string(i));
  return out;
}

// Waits for a stream to end by itself; if it does not, closes the ring so the test fails instead
// of hanging in the future's destructor.
bool ends(FlowRing& ring, std::future<void>& stream) {
  if (stream.wait_for(5s) == std::future_status::ready) return true;
  ring.close();
  stream.wait();
  return false;
}

// Resolves once the follower idles in its loop (its first heartbeat), i.e. has taken its baselines.
struct Following {
  std::promise<void> promise;
  std::once_flag once;
  std::function<bool()> hook() {
    return [this] {
      std::call_once(once, [this] { promise.set_value(); });
      return true;
    };
  }
  void wait() { promise.get_future().wait(); }
};

StreamOptions fast(std::function<uint64_t()> lost = {}) {
  StreamOptions o;
  o.node_name = "node-1";
  o.heartbeat = 20ms;
  o.datapath_lost = std::move(lost);
  return o;
}

TEST(ObserveStream, HistoryDefaultsToTheLast20) {
  FlowRing ring;
  for (uint16_t i = 1; i <= 30; ++i) ring.push(numbered(i));
  Client c;
  stream_flows(ring, ObserveRequest{}, c.writer(), fast());
  EXPECT_EQ(c.lines(), range(11, 30));
}

TEST(ObserveStream, LastAllAndFilter) {
  FlowRing ring;
  for (uint16_t i = 1; i <= 30; ++i) ring.push(numbered(i));
  Client last;
  ObserveRequest req;
  req.last = 3;
  req.filter = FlowFilter::parse({{"verdict", "DROPPED"}});
  stream_flows(ring, req, last.writer(), fast());
  EXPECT_EQ(last.lines(), (std::vector<std::string>{"26", "28", "30"}));

  Client all;
  ObserveRequest every;
  every.all = true;
  stream_flows(ring, every, all.writer(), fast());
  EXPECT_EQ(all.lines(), range(1, 30));

  Client none;
  ObserveRequest zero;
  zero.last = 0;
  stream_flows(ring, zero, none.writer(), fast());
  EXPECT_TRUE(none.lines().empty());
}

TEST(ObserveStream, HistoryEndsWithTheDatapathLossTotal) {
  FlowRing ring;
  ring.push(numbered(1));
  Client c;
  stream_flows(ring, ObserveRequest{}, c.writer(), fast([] { return uint64_t{5}; }));
  EXPECT_EQ(c.lines(), (std::vector<std::string>{"1", "lost:PERF_EVENT_RING_BUFFER:5"}));
}

TEST(ObserveStream, FollowOnlyShowsNewFlows) {
  FlowRing ring;
  for (uint16_t i = 1; i <= 5; ++i) ring.push(numbered(i));
  Client c;
  Following following;
  c.on_empty = following.hook();
  c.on_line = [](const std::string& line) { return line != "8"; };  // the client leaves after 8
  ObserveRequest req;
  req.follow = true;
  auto done = std::async(std::launch::async, [&] { stream_flows(ring, req, c.writer(), fast()); });
  following.wait();
  for (uint16_t i = 6; i <= 9; ++i) ring.push(numbered(i));
  ASSERT_TRUE(ends(ring, done));
  EXPECT_EQ(c.lines(), range(6, 8));
}

TEST(ObserveStream, FollowWithLastContinuesWithoutAGap) {
  FlowRing ring;
  for (uint16_t i = 1; i <= 5; ++i) ring.push(numbered(i));
  std::promise<void> history_sent;
  Client c;
  c.on_line = [&](const std::string& line) {
    if (line == "5") history_sent.set_value();
    return line != "7";
  };
  ObserveRequest req;
  req.follow = true;
  req.last = 2;
  auto done = std::async(std::launch::async, [&] { stream_flows(ring, req, c.writer(), fast()); });
  history_sent.get_future().wait();  // flows stored from now on are new to this follower
  ring.push(numbered(6));
  ring.push(numbered(7));
  ASSERT_TRUE(ends(ring, done));
  EXPECT_EQ(c.lines(), range(4, 7));
}

TEST(ObserveStream, ASlowFollowerIsToldWhatItMissed) {
  FlowRing ring(4);
  std::promise<void> got_first, pushed;
  auto pushed_future = pushed.get_future();
  Client c;
  Following following;
  c.on_empty = following.hook();
  c.on_line = [&](const std::string& line) {
    if (line == "1") {
      got_first.set_value();
      pushed_future.wait();  // a slow client: meanwhile the ring moves on
    }
    return line != "11";
  };
  ObserveRequest req;
  req.follow = true;
  auto done = std::async(std::launch::async, [&] { stream_flows(ring, req, c.writer(), fast()); });
  following.wait();
  ring.push(numbered(1));
  got_first.get_future().wait();
  for (uint16_t i = 2; i <= 11; ++i) ring.push(numbered(i));
  pushed.set_value();
  ASSERT_TRUE(ends(ring, done));
  EXPECT_EQ(c.lines(), (std::vector<std::string>{"1", "lost:HUBBLE_RING_BUFFER:6", "8", "9", "10", "11"}));
}

TEST(ObserveStream, FollowReportsNewDatapathLosses) {
  FlowRing ring;
  std::atomic<uint64_t> lost{2};
  Client c;
  Following following;
  c.on_empty = following.hook();
  c.on_line = [](const std::string&) { return false; };
  ObserveRequest req;
  req.follow = true;
  auto done = std::async(std::launch::async, [&] { stream_flows(ring, req, c.writer(), fast([&] { return lost.load(); })); });
  following.wait();
  lost = 7;
  ASSERT_TRUE(ends(ring, done));
  EXPECT_EQ(c.lines(), (std::vector<std::string>{"lost:PERF_EVENT_RING_BUFFER:5"}));
}

TEST(ObserveStream, FollowEndsWhenTheClientLeavesOrTheRingCloses) {
  FlowRing ring;
  Client gone;
  gone.on_empty = [] { return false; };
  ObserveRequest req;
  req.follow = true;
  auto idle = std::async(std::launch::async, [&] { stream_flows(ring, req, gone.writer(), fast()); });
  ASSERT_TRUE(ends(ring, idle));

  // Busy but filtered out: the heartbeat still notices the client left.
  Client filtered;
  filtered.on_empty = [] { return false; };
  ObserveRequest none;
  none.follow = true;
  none.filter = FlowFilter::parse({{"verdict", "ERROR"}});
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (uint16_t i = 1; !stop; ++i) {
      ring.push(numbered(i));
      std::this_thread::sleep_for(1ms);
    }
  });
  auto busy = std::async(std::launch::async, [&] { stream_flows(ring, none, filtered.writer(), fast()); });
  bool busy_ended = busy.wait_for(5s) == std::future_status::ready;
  stop = true;
  writer.join();
  ASSERT_TRUE(ends(ring, busy) && busy_ended);

  Client stays;
  Following following;
  stays.on_empty = following.hook();
  auto open = std::async(std::launch::async, [&] { stream_flows(ring, req, stays.writer(), fast()); });
  following.wait();
  ring.close();
  EXPECT_EQ(open.wait_for(5s), std::future_status::ready);
}

}  // namespace
}  // namespace pilus::observe
