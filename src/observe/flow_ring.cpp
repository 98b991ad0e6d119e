// Ring of shared flow pointers indexed by sequence number; a condition variable wakes followers.
#include "observe/flow_ring.h"

#include <algorithm>
#include <utility>

namespace pilus::observe {

FlowRing::FlowRing(size_t capacity) : capacity_(std::max<size_t>(capacity, 1)), slots_(capacity_) {}

uint64_t FlowRing::push(Flow flow) { return push(std::make_shared<const Flow>(std::move(flow))); }

uint64_t FlowRing::push(std::shared_ptr<const Flow> flow) {
  std::shared_ptr<const Flow> evicted;  // released after unlocking: freeing a flow is not free
  uint64_t seq;
  {
    std::lock_guard lock(mu_);
    seq = next_seq_++;
    evicted = std::exchange(slots_[(seq - 1) % capacity_], std::move(flow));
  }
  cv_.notify_all();
  return seq;
}

void FlowRing::push_batch(std::vector<std::shared_ptr<const Flow>>& flows) {
  if (flows.empty()) return;
  std::vector<std::shared_ptr<const Flow>> evicted;  // released after unlocking
  evicted.reserve(flows.size());
  {
    std::lock_guard lock(mu_);
    for (auto& flow : flows) {
      uint64_t seq = next_seq_++;
      evicted.push_back(std::exchange(slots_[(seq - 1) % capacity_], std::move(flow)));
    }
  }
  flows.clear();
  cv_.notify_all();
}

void FlowRing::collect_locked(uint64_t after_seq, std::vector<SequencedFlow>& out, uint64_t& missed) const {
  uint64_t last = next_seq_ - 1;
  uint64_t oldest = last >= capacity_ ? last - capacity_ + 1 : 1;
  uint64_t first = std::max(after_seq + 1, oldest);
  missed = first > after_seq + 1 ? first - (after_seq + 1) : 0;
  if (first > last) return;
  out.reserve(out.size() + (last - first + 1));
  for (uint64_t s = first; s <= last; ++s) out.push_back({s, slots_[(s - 1) % capacity_]});
}

FlowRing::Snapshot FlowRing::snapshot(const FlowFilter& filter, size_t last_n) const {
  std::vector<SequencedFlow> all;
  Snapshot snap;
  {
    std::lock_guard lock(mu_);
    uint64_t missed = 0;
    collect_locked(0, all, missed);
    snap.last_seq = next_seq_ - 1;
  }
  // Filter newest first so --last N stops early, then restore time order.
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    if (last_n > 0 && snap.flows.size() >= last_n) break;
    if (filter.matches(*it->flow)) snap.flows.push_back(std::move(*it));
  }
  std::reverse(snap.flows.begin(), snap.flows.end());
  return snap;
}

FlowRing::Batch FlowRing::wait_for_new(uint64_t after_seq, std::chrono::milliseconds timeout) const {
  Batch batch;
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return closed_ || next_seq_ - 1 > after_seq; });
  collect_locked(after_seq, batch.flows, batch.missed);
  batch.last_seq = std::max(after_seq, next_seq_ - 1);
  batch.closed = closed_;
  return batch;
}

void FlowRing::close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

bool FlowRing::closed() const {
  std::lock_guard lock(mu_);
  return closed_;
}

uint64_t FlowRing::last_seq() const {
  std::lock_guard lock(mu_);
  return next_seq_ - 1;
}

FlowRing::Stats FlowRing::stats() const {
  std::lock_guard lock(mu_);
  Stats s;
  s.total_seen = next_seq_ - 1;
  s.capacity = capacity_;
  s.size = std::min<uint64_t>(s.total_seen, capacity_);
  s.overwritten = s.total_seen - s.size;
  return s;
}

}  // namespace pilus::observe
