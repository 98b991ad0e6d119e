/* Per-endpoint policy lookup, as Cilium's datapath does it.
 *
 * API:
 *   policy_check(ctx, ep, peer_identity, peer_cidr_identity) ->
 *       POLICY_ALLOWED_BY_RULE (an entry allowed it), POLICY_ALLOWED_BY_DEFAULT
 *       (no policy selects this direction), or -DROP_POLICY_DENY (a deny rule) /
 *       -DROP_POLICY_DENIED (default deny); ctx->policy_match_type names the
 *       kind of entry that decided (none for the default), and ctx->proxy_port
 *       the L7 proxy an allow asks for (the first of the three entries below
 *       that carries one), or 0; proxy_redirect reads it instead of looking
 *       the policy up again
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

enum policy_result {
	POLICY_ALLOWED_BY_DEFAULT = 0,
	POLICY_ALLOWED_BY_RULE = 1,
};

static __always_inline int policy_check(struct pkt_ctx *ctx, const struct endpoint_info *ep, __u32 peer_identity,
					__u32 peer_cidr_identity)
{
	const struct packet *pkt = &ctx->pkt;
	__u16 enforced = ctx->dir == METRIC_INGRESS ? ENDPOINT_F_INGRESS_ENFORCED : ENDPOINT_F_EGRESS_ENFORCED;
	struct policy_key key = {
		.prefixlen = POLICY_PREFIX_FULL,
		.endpoint_id = ep->endpoint_id,
		.direction = ctx->dir,
		.identity = peer_identity,
		.protocol = pkt->proto,
		/* ICMP has no port; the echo id in pkt->dport is conntrack's, not policy's. */
		.dport = pkt->proto == IPPROTO_ICMP ? 0 : pkt->dport,
	};
	struct policy_entry *exact = bpf_map_lookup_elem(&policy, &key);

	ctx->policy_match_type = POLICY_MATCH_NONE;
	ctx->proxy_port = 0;
	if (exact && (exact->flags & POLICY_F_DENY)) {
		ctx->policy_match_type = exact->match_type;
		return -DROP_POLICY_DENY;
	}
	struct policy_entry *cidr = 0;
	if (peer_cidr_identity) {
		key.identity = peer_cidr_identity;
		cidr = bpf_map_lookup_elem(&policy, &key);
		if (cidr && (cidr->flags & POLICY_F_DENY)) {
			ctx->policy_match_type = cidr->match_type;
			return -DROP_POLICY_DENY;
		}
	}
	key.identity = 0;
	struct policy_entry *any = bpf_map_lookup_elem(&policy, &key);
	if (any && (any->flags & POLICY_F_DENY)) {
		ctx->policy_match_type = any->match_type;
		return -DROP_POLICY_DENY;
	}
	struct policy_entry *allow = exact ? exact : cidr ? cidr : any;
	if (allow) {
		ctx->policy_match_type = allow->match_type;
		ctx->proxy_port = exact && exact->proxy_port ? exact->proxy_port
				  : cidr && cidr->proxy_port   ? cidr->proxy_port
				  : any ? any->proxy_port : 0;
		return POLICY_ALLOWED_BY_RULE;
	}
	return (ep->flags & enforced) ? -DROP_POLICY_DENIED : POLICY_ALLOWED_BY_DEFAULT;
}
