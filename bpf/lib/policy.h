/* Per-endpoint policy lookup, as Cilium's datapath does it.
 *
 * API:
 *   policy_check(ep, dir, peer_identity, peer_cidr_identity, pkt) -> 0 (allowed) or
 *       -DROP_POLICY_DENY (a deny rule) / -DROP_POLICY_DENIED (default deny)
 *
 * Order: the longest match for the exact peer identity, then for the peer's
 * CIDR identity (when a policy CIDR holds its address), then for "any
 * identity". A deny found in any wins at once; else an allow found in any
 * allows; else the direction's default applies:
 * deny when a policy selects the endpoint in that direction, allow when none does. */
#pragma once

#include "abi/endpoint.h"
#include "abi/policy.h"
#include "lib/common.h"

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, POLICY_MAX_DEFAULT);
	__type(key, struct policy_key);
	__type(value, struct policy_entry);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} policy SEC(".maps");

static __always_inline int policy_check(const struct endpoint_info *ep, __u8 dir, __u32 peer_identity,
					__u32 peer_cidr_identity, const struct packet *pkt)
{
	__u16 enforced = dir == METRIC_INGRESS ? ENDPOINT_F_INGRESS_ENFORCED : ENDPOINT_F_EGRESS_ENFORCED;
	struct policy_key key = {
		.prefixlen = POLICY_PREFIX_FULL,
		.endpoint_id = ep->endpoint_id,
		.direction = dir,
		.identity = peer_identity,
		.protocol = pkt->proto,
		/* ICMP has no port; the echo id in pkt->dport is conntrack's, not policy's. */
		.dport = pkt->proto == IPPROTO_ICMP ? 0 : pkt->dport,
	};
	struct policy_entry *exact = bpf_map_lookup_elem(&policy, &key);

	if (exact && (exact->flags & POLICY_F_DENY))
		return -DROP_POLICY_DENY;
	struct policy_entry *cidr = 0;
	if (peer_cidr_identity) {
		key.identity = peer_cidr_identity;
		cidr = bpf_map_lookup_elem(&policy, &key);
		if (cidr && (cidr->flags & POLICY_F_DENY))
			return -DROP_POLICY_DENY;
	}
	key.identity = 0;
	struct policy_entry *any = bpf_map_lookup_elem(&policy, &key);
	if (any && (any->flags & POLICY_F_DENY))
		return -DROP_POLICY_DENY;
	if (exact || cidr || any)
		return 0;
	return (ep->flags & enforced) ? -DROP_POLICY_DENIED : 0;
}
