// libbpf ring_buffer polling loop and the per-CPU lost-event counter.
#include "observe/event_reader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <vector>

#include "common/error.h"

namespace pilus::observe {

namespace {
// Bounds how long stop() waits for the thread, and how late a flow below the datapath's
// wakeup threshold is read.
constexpr int kPollTimeoutMs = 100;
// Flows stored at once: large enough to make the ring's lock and wake-up rare, small against
// the flow ring (4096) so a follower is not handed more than it can take in one go.
constexpr size_t kBatch = 128;
}

EventReader::EventReader(int events_fd, int lost_fd, FlowDecoder& decoder, FlowRing& ring)
    : events_fd_(events_fd), lost_fd_(lost_fd), decoder_(decoder), ring_(ring) {}

EventReader::~EventReader() { stop(); }

void EventReader::start() {
  if (thread_.joinable()) fail("event reader already started");
  if (events_fd_ < 0) fail("event reader: no events ring buffer map");
  errno = 0;
  rb_ = ring_buffer__new(events_fd_, &EventReader::on_sample, this, nullptr);
  if (!rb_) throw system_error("opening the events ring buffer", errno ? errno : EINVAL);
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void EventReader::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  if (rb_) {
    ring_buffer__free(rb_);
    rb_ = nullptr;
  }
}

void EventReader::run() {
  while (!stopping_.load(std::memory_order_relaxed)) {
    int n = ring_buffer__poll(rb_, kPollTimeoutMs);
    // The datapath wakes this thread only once a backlog builds up (bpf/lib/events.h):
    // what came in below that is read here, at the latest one timeout late.
    if (n == 0) n = ring_buffer__consume(rb_);
    flush_batch();  // what this poll read is stored before waiting again
    // EINTR is a signal, not a failure; other errors would repeat at once, so pace them.
    if (n < 0 && n != -EINTR) std::this_thread::sleep_for(std::chrono::milliseconds(kPollTimeoutMs));
  }
}

int EventReader::on_sample(void* ctx, void* data, size_t size) {
  // An exception must not unwind through libbpf's C frames; a resolver or on_flow callback that
  // throws loses this one flow (counted), never the reader.
  auto* reader = static_cast<EventReader*>(ctx);
  try {
    reader->decode_to_batch(data, size);
  } catch (...) {
    reader->callback_errors_.fetch_add(1, std::memory_order_relaxed);
  }
  return 0;  // a bad record is counted, never a reason to stop consuming the ring
}

bool EventReader::handle_record(const void* data, size_t size) {
  auto flow = decoder_.decode(data, size);
  if (!flow) return false;
  auto shared = std::make_shared<const Flow>(std::move(*flow));
  if (on_flow_) on_flow_(*shared);
  ring_.push(std::move(shared));
  return true;
}

void EventReader::decode_to_batch(const void* data, size_t size) {
  auto flow = decoder_.decode(data, size);
  if (!flow) return;
  auto shared = std::make_shared<const Flow>(std::move(*flow));
  if (on_flow_) on_flow_(*shared);
  batch_.push_back(std::move(shared));
  if (batch_.size() >= kBatch) flush_batch();
}

void EventReader::flush_batch() { ring_.push_batch(batch_); }

uint64_t EventReader::lost_events() const {
  if (lost_fd_ < 0) return 0;
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return last_lost_.load();
  // A per-CPU lookup fills one 8-byte-aligned slot per possible CPU.
  std::vector<uint64_t> values(static_cast<size_t>(cpus), 0);
  uint32_t key = 0;
  if (bpf_map_lookup_elem(lost_fd_, &key, values.data()) != 0) return last_lost_.load();
  uint64_t sum = 0;
  for (uint64_t v : values) sum += v;
  last_lost_.store(sum);
  return sum;
}

}  // namespace pilus::observe
