/* The one way to drop a packet: count it, report it with its reason, shoot it.
 *
 * API:
 *   return drop_packet(skb, ctx, reason); */
#pragma once

#include "lib/common.h"
#include "lib/events.h"
#include "lib/metrics.h"

static __always_inline int drop_packet(struct __sk_buff *skb, const struct pkt_ctx *ctx, __u8 reason)
{
	metrics_count(ctx->endpoint_id, reason, ctx->dir, ctx->pkt.length);
	emit_event(skb, ctx, EVENT_DROP, reason);
	return TC_ACT_SHOT;
}
