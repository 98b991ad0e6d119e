/* Per-endpoint policy lookup, as Cilium's datapath does it.
 *
 * API:
 *   policy_check(ctx, ep, peer_identity, peer_cidr_identity, peer_endpoint_id) ->
 *       POLICY_ALLOWED_BY_RULE (an entry allowed it), POLICY_ALLOWED_BY_DEFAULT
 *       (no policy selects this direction), or -DROP_POLICY_DENY (a deny rule) /
 *       -DROP_POLICY_DENIED (default deny); ctx->policy_match_type names the
 *       kind of entry that decided (none for the default), and ctx->proxy_port
 *       the L7 proxy an allow asks for (the first of the entries below
 *       that carries one), or 0 (proxy_redirect reads it instead of looking
 *       the policy up again); ctx->policy_ref the deciding entry's rule_id, or
 *       for default deny the endpoint's POLICY_PEER_DEFAULT_DENY reference
 *
 * Order: the longest match for the exact peer identity, then (egress, when
 * the endpoint has such entries) for the destination endpoint, then for the peer's
 * CIDR identity (when a policy CIDR holds its address), then for "any
 * identity". A deny found in any wins at once; else an allow found in any
 * allows; else the direction's default applies:
 * deny when a policy selects the endpoint in that direction, allow when none does.
 *
 *   policy_revision_now() -> the policy revision: the agent bumps it after every
 *       batch of changes to what a verdict depends on (policy map, policy CIDRs,
 *       endpoint flags, ipcache); a conntrack entry allowed at the current one skips
 *       policy_check (ct_allow_cached). 0 until the agent first writes it: no caching. */
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

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} policy_revision SEC(".maps");

static __always_inline __u32 policy_revision_now(void)
{
	__u32 zero = 0;
	__u32 *revision = bpf_map_lookup_elem(&policy_revision, &zero);

	return revision ? *revision : 0;
}

enum policy_result {
	POLICY_ALLOWED_BY_DEFAULT = 0,
	POLICY_ALLOWED_BY_RULE = 1,
};

/* The policies that made this direction default deny, for the drop event. */
static __always_inline __u32 policy_default_deny_ref(const struct pkt_ctx *ctx, const struct endpoint_info *ep)
{
	struct policy_key key = {
		.prefixlen = POLICY_PREFIX_ANY_PROTO,
		.endpoint_id = ep->endpoint_id,
		.direction = ctx->dir,
		.peer_kind = POLICY_PEER_DEFAULT_DENY,
	};
	struct policy_entry *e = bpf_map_lookup_elem(&policy, &key);

	return e ? e->rule_id : 0;
}

static __always_inline int policy_check(struct pkt_ctx *ctx, const struct endpoint_info *ep, __u32 peer_identity,
					__u32 peer_cidr_identity, __u16 peer_endpoint_id)
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
	ctx->policy_ref = 0;
	if (exact && (exact->flags & POLICY_F_DENY)) {
		ctx->policy_match_type = exact->match_type;
		ctx->policy_ref = exact->rule_id;
		return -DROP_POLICY_DENY;
	}
	/* Named ports in egress rules: entries for this destination pod. */
	struct policy_entry *peer = 0;
	if (peer_endpoint_id && (ep->flags & ENDPOINT_F_EGRESS_PER_PEER)) {
		key.peer_kind = POLICY_PEER_ENDPOINT;
		key.identity = peer_endpoint_id;
		peer = bpf_map_lookup_elem(&policy, &key);
		key.peer_kind = POLICY_PEER_IDENTITY;
		if (peer && (peer->flags & POLICY_F_DENY)) {
			ctx->policy_match_type = peer->match_type;
			ctx->policy_ref = peer->rule_id;
			return -DROP_POLICY_DENY;
		}
	}
	struct policy_entry *cidr = 0;
	if (peer_cidr_identity) {
		key.identity = peer_cidr_identity;
		cidr = bpf_map_lookup_elem(&policy, &key);
		if (cidr && (cidr->flags & POLICY_F_DENY)) {
			ctx->policy_match_type = cidr->match_type;
			ctx->policy_ref = cidr->rule_id;
			return -DROP_POLICY_DENY;
		}
	}
	key.identity = 0;
	struct policy_entry *any = bpf_map_lookup_elem(&policy, &key);
	if (any && (any->flags & POLICY_F_DENY)) {
		ctx->policy_match_type = any->match_type;
		ctx->policy_ref = any->rule_id;
		return -DROP_POLICY_DENY;
	}
	struct policy_entry *allow = exact ? exact : peer ? peer : cidr ? cidr : any;
	if (allow) {
		ctx->policy_match_type = allow->match_type;
		ctx->policy_ref = allow->rule_id;
		ctx->proxy_port = exact && exact->proxy_port ? exact->proxy_port
				  : peer && peer->proxy_port   ? peer->proxy_port
				  : cidr && cidr->proxy_port   ? cidr->proxy_port
				  : any ? any->proxy_port : 0;
		return POLICY_ALLOWED_BY_RULE;
	}
	if (!(ep->flags & enforced))
		return POLICY_ALLOWED_BY_DEFAULT;
	ctx->policy_ref = policy_default_deny_ref(ctx, ep);
	return -DROP_POLICY_DENIED;
}
