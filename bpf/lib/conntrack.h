/* Connection tracking in an LRU hash, with per-state lifetimes.
 *
 * API:
 *   ct_lookup(ctx, scope, &entry) -> CT_NEW | CT_ESTABLISHED | CT_REPLY, and
 *                            the entry found (NULL for CT_NEW)
 *   ct_touch(entry, pkt, reply, now) -> 1 when the packet is worth a trace
 *                            event (monitor aggregation: the first reply, or a
 *                            SYN, FIN or RST new in its direction), else 0.
 *                            Counts the packet on its entry; called only once
 *                            the packet is allowed, so a dropped one neither
 *                            counts nor keeps the connection alive
 *   ct_create(ctx, scope, revision) -> 0 or -DROP_CT_MAP_INSERTION_FAILED; called
 *                            for CT_NEW once policy has allowed the packet; the
 *                            entry is stamped with `revision` (ct_stamp's rule)
 *   ct_allow_cached(entry, ctx, revision) -> 1 when a packet of the entry's own
 *                            direction may skip policy: the entry was allowed at
 *                            `revision` (the current policy revision, not 0) for
 *                            the identities ctx holds now
 *   ct_stamp(entry, ctx, revision) records that policy has just allowed such a
 *                            packet at `revision` (read before the policy lookups,
 *                            so a change that races them bumps it past the stamp);
 *                            not for an allow that names the L7 proxy (its SYN
 *                            must decide again), nor when the identities differ
 *                            from the entry's (a relabelled pod: judged every time)
 *
 * Lookup order: the packet's own tuple in `scope` (the connection was opened
 * in this direction), then the reversed tuple in the other scope (this is a
 * reply). An expired entry counts as absent; the agent's GC deletes it later.
 *
 *   state                         | lifetime
 *   ------------------------------|-------------------
 *   TCP, no reply seen yet        | CT_LIFETIME_SYN
 *   TCP, reply seen               | CT_LIFETIME_TCP
 *   TCP, FIN or RST seen          | CT_LIFETIME_CLOSE
 *   UDP, ICMP                     | CT_LIFETIME_NONTCP */
#pragma once

#include "abi/conntrack.h"
#include "lib/common.h"

enum ct_status {
	CT_NEW = 0,
	CT_ESTABLISHED = 1,
	CT_REPLY = 2,
};

/* Tunable before load (rodata), so tests and users can size it. */
const volatile __u32 ct_lifetime_tcp = CT_LIFETIME_TCP;
const volatile __u32 ct_lifetime_nontcp = CT_LIFETIME_NONTCP;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CT_MAX_DEFAULT);
	__type(key, struct ct_key);
	__type(value, struct ct_entry);
} conntrack SEC(".maps");

static __always_inline __u32 ct_lifetime(const struct ct_entry *e, __u8 proto)
{
	if (proto != IPPROTO_TCP)
		return ct_lifetime_nontcp;
	if (e->flags & CT_F_CLOSING)
		return CT_LIFETIME_CLOSE;
	if (e->flags & CT_F_SEEN_REPLY)
		return ct_lifetime_tcp;
	return CT_LIFETIME_SYN;
}

/* TCP flags whose first appearance in a direction is reported. */
#define CT_REPORT_TCP_FLAGS (TCP_BIT_SYN | TCP_BIT_FIN | TCP_BIT_RST)

static __always_inline int ct_touch(struct ct_entry *e, const struct packet *pkt, int reply, __u32 now)
{
	int report;

	if (reply) {
		__sync_fetch_and_add(&e->packets_rev, 1);
		__sync_fetch_and_add(&e->bytes_rev, pkt->length);
		report = (pkt->tcp_flags & CT_REPORT_TCP_FLAGS & ~e->tcp_flags_rev) || !(e->flags & CT_F_SEEN_REPLY);
		if ((e->tcp_flags_rev | pkt->tcp_flags) != e->tcp_flags_rev)
			e->tcp_flags_rev |= pkt->tcp_flags;
		if (!(e->flags & CT_F_SEEN_REPLY))
			e->flags |= CT_F_SEEN_REPLY;
	} else {
		__sync_fetch_and_add(&e->packets_fwd, 1);
		__sync_fetch_and_add(&e->bytes_fwd, pkt->length);
		report = (pkt->tcp_flags & CT_REPORT_TCP_FLAGS & ~e->tcp_flags_fwd) != 0;
		if ((e->tcp_flags_fwd | pkt->tcp_flags) != e->tcp_flags_fwd)
			e->tcp_flags_fwd |= pkt->tcp_flags;
	}
	if (pkt->tcp_flags & (TCP_BIT_FIN | TCP_BIT_RST))
		e->flags |= CT_F_CLOSING;
	__u32 expires = now + ct_lifetime(e, pkt->proto);
	if (e->expires != expires)
		e->expires = expires;
	return report;
}

static __always_inline int ct_allow_cached(const struct ct_entry *e, const struct pkt_ctx *ctx, __u32 revision)
{
	return revision && e->policy_revision == revision && e->src_identity == ctx->src_identity &&
	       e->dst_identity == ctx->dst_identity;
}

static __always_inline void ct_stamp(struct ct_entry *e, const struct pkt_ctx *ctx, __u32 revision)
{
	if (ctx->proxy_port || e->src_identity != ctx->src_identity || e->dst_identity != ctx->dst_identity)
		return;
	if (e->policy_revision != revision)
		e->policy_revision = revision;
}

static __always_inline int ct_lookup(struct pkt_ctx *ctx, __u8 scope, struct ct_entry **found)
{
	const struct packet *pkt = &ctx->pkt;
	__u32 now = ctx->now;
	struct ct_key key = {
		.saddr = pkt->saddr, .daddr = pkt->daddr,
		.sport = pkt->sport, .dport = pkt->dport,
		.proto = pkt->proto, .scope = scope,
	};
	struct ct_entry *e = bpf_map_lookup_elem(&conntrack, &key);

	if (e && e->expires > now) {
		*found = e;
		return CT_ESTABLISHED;
	}

	struct ct_key rev = {
		.saddr = pkt->daddr, .daddr = pkt->saddr,
		.sport = pkt->dport, .dport = pkt->sport,
		.proto = pkt->proto, .scope = scope == CT_EGRESS ? CT_INGRESS : CT_EGRESS,
	};
	e = bpf_map_lookup_elem(&conntrack, &rev);
	if (e && e->expires > now) {
		*found = e;
		ctx->is_reply = 1;
		return CT_REPLY;
	}
	*found = 0;
	return CT_NEW;
}

static __always_inline int ct_create(struct pkt_ctx *ctx, __u8 scope, __u32 revision)
{
	const struct packet *pkt = &ctx->pkt;
	__u32 now = ctx->now;
	struct ct_key key = {
		.saddr = pkt->saddr, .daddr = pkt->daddr,
		.sport = pkt->sport, .dport = pkt->dport,
		.proto = pkt->proto, .scope = scope,
	};
	struct ct_entry entry = {
		.created = now,
		.src_identity = ctx->src_identity,
		.dst_identity = ctx->dst_identity,
		.policy_revision = ctx->proxy_port ? 0 : revision,
	};
	ct_touch(&entry, pkt, 0, now);
	if (bpf_map_update_elem(&conntrack, &key, &entry, BPF_ANY) < 0)
		return -DROP_CT_MAP_INSERTION_FAILED;
	return 0;
}
