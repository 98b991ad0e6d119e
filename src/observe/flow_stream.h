// The body of an observe request: stored flows, then followed ones, as JSON lines with lost-event notes.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "observe/flow_filter.h"
#include "observe/flow_ring.h"

namespace pilus::observe {

// Writes one chunk; false once the client is gone. An empty chunk only asks whether it still is
// (the API server's StreamWriter has exactly this contract).
using ChunkWriter = std::function<bool(std::string_view chunk)>;

struct StreamOptions {
  std::string node_name;
  // Stored flows shown when the request gives neither last nor all and does not follow (Hubble's 20).
  size_t default_last = 20;
  // How often an idle follower checks that its client is still there.
  std::chrono::milliseconds heartbeat{1000};
  // The datapath's lost-event counter (EventReader::lost_events); empty when there is none.
  std::function<uint64_t()> datapath_lost;
};

// Writes newline-terminated JSON lines (flow_json_line / lost_events_json_line):
// 1. Unless the request only follows: the matching stored flows, the newest `last` of them (all of
//    them with `all`; default_last when neither is given), then, when the datapath has lost events
//    since the agent started, one lost_events line (PERF_EVENT_RING_BUFFER) with that total.
// 2. With follow: each new matching flow as it is stored, from just after the stored ones, until
//    the client goes away or the ring is closed. When this follower fell behind the ring, a
//    lost_events line (HUBBLE_RING_BUFFER) says how many flows it missed; when the datapath's
//    counter grows meanwhile, a PERF_EVENT_RING_BUFFER line says by how much.
// Returns when done; never throws for a vanished client.
void stream_flows(const FlowRing& ring, const ObserveRequest& request, const ChunkWriter& write,
                  const StreamOptions& options);

}  // namespace pilus::observe
