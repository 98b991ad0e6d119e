// The last N flows in memory, for `observe --last` and for followers that must not miss a flow.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "observe/flow.h"
#include "observe/flow_filter.h"

namespace pilus::observe {

// A flow with its place in the stream: 1 for the first flow ever pushed, then +1 each.
struct SequencedFlow {
  uint64_t seq = 0;
  std::shared_ptr<const Flow> flow;
};

// Thread-safe. Flows are stored as shared immutable objects, so a reader copies pointers under a
// short lock and filters or formats outside it: a writer waits at most for that copy, never for a
// slow reader (or a slow HTTP client behind it).
class FlowRing {
 public:
  static constexpr size_t kDefaultCapacity = 4096;
  explicit FlowRing(size_t capacity = kDefaultCapacity);  // capacity 0 is taken as 1

  // Stores a flow, overwriting the oldest when full; returns its sequence number and wakes followers.
  uint64_t push(Flow flow);
  uint64_t push(std::shared_ptr<const Flow> flow);
  // Stores several flows in order under one lock and one wake-up (the event reader's batches);
  // moves them out of `flows`.
  void push_batch(std::vector<std::shared_ptr<const Flow>>& flows);

  struct Snapshot {
    std::vector<SequencedFlow> flows;  // oldest first
    uint64_t last_seq = 0;  // the newest sequence number at snapshot time: follow from here
  };
  // The stored flows that match, oldest first; only the newest last_n of them when last_n > 0.
  Snapshot snapshot(const FlowFilter& filter = FlowFilter(), size_t last_n = 0) const;

  struct Batch {
    std::vector<SequencedFlow> flows;  // every stored flow with seq > after_seq, oldest first
    // Flows after after_seq that were overwritten before this call saw them: the follower was
    // too slow (or started too far back) and should report them as lost.
    uint64_t missed = 0;
    uint64_t last_seq = 0;  // pass as after_seq next time
    bool closed = false;    // close() was called: stop following
  };
  // Returns at once when flows newer than after_seq are stored, else waits up to timeout for one
  // (an empty batch on timeout or after close()). Unfiltered: followers filter, so a filter that
  // rejects everything cannot make them miss the overwrite accounting.
  Batch wait_for_new(uint64_t after_seq, std::chrono::milliseconds timeout) const;

  // Wakes every waiting follower and makes wait_for_new return at once from now on (shutdown).
  void close();
  bool closed() const;

  uint64_t last_seq() const;
  // Followers waiting for new flows (stream_flows counts itself once it knows where it follows
  // from): what a client waits for before making traffic it wants to see.
  class Following {
   public:
    explicit Following(const FlowRing& ring) : ring_(ring) { ring_.followers_++; }
    ~Following() { ring_.followers_--; }
    Following(const Following&) = delete;
    Following& operator=(const Following&) = delete;

   private:
    const FlowRing& ring_;
  };
  size_t followers() const { return followers_.load(); }
  struct Stats {
    uint64_t total_seen = 0;   // flows ever pushed
    uint64_t overwritten = 0;  // flows pushed out of the ring by newer ones
    size_t size = 0;
    size_t capacity = 0;
  };
  Stats stats() const;

 private:
  // Copies of the stored pointers with seq > after_seq, plus how many such flows are gone.
  void collect_locked(uint64_t after_seq, std::vector<SequencedFlow>& out, uint64_t& missed) const;

  const size_t capacity_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<std::shared_ptr<const Flow>> slots_;  // slot of seq s: (s - 1) % capacity_
  uint64_t next_seq_ = 1;
  bool closed_ = false;
  mutable std::atomic<size_t> followers_{0};
};

}  // namespace pilus::observe
