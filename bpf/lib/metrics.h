/* Per-CPU counters of packets and bytes, per endpoint, direction and reason.
 *
 * API:
 *   metrics_count(ep_id, reason, dir, bytes) */
#pragma once

#include "lib/common.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, METRICS_MAX);
	__type(key, struct metrics_key);
	__type(value, struct metrics_value);
} metrics SEC(".maps");

static __always_inline void metrics_count(__u16 endpoint_id, __u8 reason, __u8 dir, __u32 bytes)
{
	struct metrics_key key = { .endpoint_id = endpoint_id, .reason = reason, .dir = dir };
	struct metrics_value *v = bpf_map_lookup_elem(&metrics, &key);

	if (v) {
		v->packets++;
		v->bytes += bytes;
		return;
	}
	struct metrics_value init = { .packets = 1, .bytes = bytes };
	bpf_map_update_elem(&metrics, &key, &init, BPF_NOEXIST);
}
