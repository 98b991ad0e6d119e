/* Local endpoints map: pod IPv4 -> veth ifindex, MACs, identity.
 *
 * API:
 *   endpoint_lookup(ip4) -> struct endpoint_info * or NULL */
#pragma once

#include "abi/endpoint.h"
#include "lib/common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ENDPOINTS_MAX);
	__type(key, struct endpoint_key);
	__type(value, struct endpoint_info);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} endpoints SEC(".maps");

static __always_inline struct endpoint_info *endpoint_lookup(__u32 ip4)
{
	struct endpoint_key key = { .ip4 = ip4 };
	return bpf_map_lookup_elem(&endpoints, &key);
}
