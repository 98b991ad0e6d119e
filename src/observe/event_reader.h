// Reads the datapath's events ring buffer on its own thread and feeds decoded flows to a FlowRing.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "observe/flow.h"
#include "observe/flow_decoder.h"
#include "observe/flow_ring.h"

struct ring_buffer;

namespace pilus::observe {

class EventReader {
 public:
  // events_fd: the BPF_MAP_TYPE_RINGBUF map "events"; lost_fd: the per-CPU array "events_lost"
  // (key 0, __u64), or -1. The fds stay owned by the caller and must outlive the reader. Nothing
  // runs until start(), so a reader built with events_fd -1 can still take records through
  // handle_record().
  EventReader(int events_fd, int lost_fd, FlowDecoder& decoder, FlowRing& ring);
  ~EventReader();  // stop()s
  EventReader(const EventReader&) = delete;
  EventReader& operator=(const EventReader&) = delete;

  // Opens the ring buffer and starts the polling thread (poll timeout 100 ms). Throws pilus::Error
  // when libbpf cannot use events_fd, or when already started.
  void start();
  // Stops and joins the thread; records still in the kernel ring stay there for the next reader.
  // Idempotent.
  void stop();

  // The decode path of one record, as the polling thread runs it; public so it can be fed bytes.
  // Returns whether a flow was stored.
  bool handle_record(const void* data, size_t size);

  // Also called with every stored flow, on the reader thread (e.g. for flow metrics). Set before start().
  void on_flow(std::function<void(const Flow&)> callback) { on_flow_ = std::move(callback); }

  // Events the datapath could not write because the ring was full: the sum over CPUs of
  // events_lost[0]. Reads the map; 0 without a lost map. Throws nothing: a failed read returns
  // the last value read.
  uint64_t lost_events() const;
  uint64_t decoded() const { return decoder_.decoded(); }
  uint64_t decode_errors() const { return decoder_.decode_errors(); }
  // Records dropped because the resolver or the on_flow callback threw.
  uint64_t callback_errors() const { return callback_errors_.load(std::memory_order_relaxed); }
  bool running() const { return thread_.joinable(); }

 private:
  static int on_sample(void* ctx, void* data, size_t size);
  void run();
  // The polling thread's path: decoded flows are stored in batches (one lock and one wake-up
  // of the followers per batch, not per flow).
  void decode_to_batch(const void* data, size_t size);
  void flush_batch();
  std::vector<std::shared_ptr<const Flow>> batch_;

  int events_fd_;
  int lost_fd_;
  FlowDecoder& decoder_;
  FlowRing& ring_;
  std::function<void(const Flow&)> on_flow_;
  ring_buffer* rb_ = nullptr;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  mutable std::atomic<uint64_t> last_lost_{0};
  std::atomic<uint64_t> callback_errors_{0};
};

}  // namespace pilus::observe
