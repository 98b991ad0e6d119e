// Snapshot-then-follow loop over the FlowRing, reporting every loss instead of hiding it.
#include "observe/flow_stream.h"

#include <algorithm>

#include "observe/flow_json.h"

namespace pilus::observe {

namespace {

constexpr size_t kChunkBytes = 64 * 1024;

bool write_line(const ChunkWriter& write, std::string line) {
  line += '\n';
  return write(line);
}

bool write_lost(const ChunkWriter& write, LostEventSource source, uint64_t count, const StreamOptions& options) {
  return write_line(write, lost_events_json_line(LostEvents{source, count, Clock::now(), options.node_name}));
}

}  // namespace

void stream_flows(const FlowRing& ring, const ObserveRequest& request, const ChunkWriter& write,
                  const StreamOptions& options) {
  uint64_t datapath_lost = options.datapath_lost ? options.datapath_lost() : 0;
  uint64_t after = 0;
  if (request.first) {  // the oldest matching flows, then done
    FlowRing::Snapshot snap = ring.snapshot(request.filter, 0);
    for (size_t i = 0; i < snap.flows.size() && i < *request.first; ++i)
      if (!write_line(write, flow_json_line(*snap.flows[i].flow))) return;
    if (datapath_lost > 0) write_lost(write, LostEventSource::PerfEventRingBuffer, datapath_lost, options);
    return;
  }
  bool history = !request.follow || request.last.has_value() || request.all;
  if (history) {
    size_t last = request.all ? 0 : request.last.value_or(options.default_last);
    // last=0 without all would mean "every flow" to snapshot(); to a user it means none.
    FlowRing::Snapshot snap;
    if (request.all || last > 0) {
      snap = ring.snapshot(request.filter, last);
    } else {
      snap.last_seq = ring.last_seq();
    }
    for (const auto& s : snap.flows) {
      if (!write_line(write, flow_json_line(*s.flow))) return;
    }
    if (datapath_lost > 0 && !write_lost(write, LostEventSource::PerfEventRingBuffer, datapath_lost, options)) return;
    after = snap.last_seq;
  } else {
    after = ring.last_seq();
  }
  if (!request.follow) return;
  FlowRing::Following following(ring);  // from `after` on, every flow stored reaches this loop

  // Any write tells whether the client is still there; without one for a heartbeat (idle, or a
  // filter rejecting all traffic) an empty write asks, so a gone client ends the loop.
  auto last_contact = std::chrono::steady_clock::now();
  std::string out;
  while (true) {
    auto batch = ring.wait_for_new(after, options.heartbeat);
    bool wrote = false;
    if (batch.missed > 0) {
      if (!write_lost(write, LostEventSource::HubbleRingBuffer, batch.missed, options)) return;
      wrote = true;
    }
    // A batch goes out in chunks of many lines: one write (a syscall) per line would cap a
    // follower far below what the agent decodes.
    out.clear();
    for (const auto& s : batch.flows) {
      if (!request.filter.matches(*s.flow)) continue;
      append_flow_json_line(out, *s.flow);
      out += '\n';
      if (out.size() >= kChunkBytes) {
        if (!write(out)) return;
        out.clear();
        wrote = true;
      }
    }
    if (!out.empty()) {
      if (!write(out)) return;
      wrote = true;
    }
    after = batch.last_seq;
    if (options.datapath_lost) {
      uint64_t now_lost = options.datapath_lost();
      if (now_lost > datapath_lost) {
        if (!write_lost(write, LostEventSource::PerfEventRingBuffer, now_lost - datapath_lost, options)) return;
        wrote = true;
      }
      datapath_lost = std::max(datapath_lost, now_lost);
    }
    if (batch.closed) return;
    auto now = std::chrono::steady_clock::now();
    if (wrote) {
      last_contact = now;
    } else if (now - last_contact >= options.heartbeat) {
      if (!write("")) return;
      last_contact = now;
    }
  }
}

}  // namespace pilus::observe
