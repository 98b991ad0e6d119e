/* Events ring buffer: drop and trace notifications for the agent's flows.
 * A record that does not fit is counted in events_lost, never hidden.
 *
 * API:
 *   emit_event(skb, ctx, type, reason) */
#pragma once

#include "abi/events.h"
#include "lib/common.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, EVENTS_RING_BYTES);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} events_lost SEC(".maps");

static __always_inline void emit_event(struct __sk_buff *skb, const struct pkt_ctx *ctx, __u8 type, __u8 reason)
{
	struct flow_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		__u32 zero = 0;
		__u64 *lost = bpf_map_lookup_elem(&events_lost, &zero);
		if (lost)
			(*lost)++;
		return;
	}
	e->timestamp_ns = bpf_ktime_get_ns();
	e->type = type;
	e->reason = reason;
	e->dir = ctx->dir;
	e->proto = ctx->pkt.proto;
	e->saddr = ctx->pkt.saddr;
	e->daddr = ctx->pkt.daddr;
	e->sport = ctx->pkt.sport;
	e->dport = ctx->pkt.dport;
	e->src_identity = ctx->src_identity;
	e->dst_identity = ctx->dst_identity;
	e->endpoint_id = ctx->endpoint_id;
	e->tcp_flags = ctx->pkt.tcp_flags;
	e->icmp_type = ctx->pkt.icmp_type;
	e->icmp_code = ctx->pkt.icmp_code;
	e->is_reply = ctx->is_reply;
	e->policy_match_type = ctx->policy_match_type;
	e->pad = 0;
	e->ifindex = ctx->ifindex;
	e->length = ctx->pkt.length;
	e->policy_ref = ctx->policy_ref;
	e->pad2 = 0;
	/* The agent's reader is woken only once a backlog builds up (an eighth of the
	 * ring); it also reads whatever is there every 100 ms (EventReader). A new
	 * connection's handful of events thus costs no wakeup each: at a few thousand
	 * connections a second those wakeups were most of the agent's CPU time. */
	__u64 pending = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 size = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE);
	bpf_ringbuf_submit(e, pending >= size / 8 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}
