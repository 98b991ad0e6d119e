/* Per-pod datapath, attached to the host side of every pod veth:
 *   from_pod: tc ingress (packets the pod sends)
 *   to_pod:   tc egress  (packets delivered to the pod)
 * Composes the concerns in lib/; each step may end the packet with a named
 * drop reason. */
#include "lib/common.h"
#include "lib/conntrack.h"
#include "lib/drop.h"
#include "lib/endpoints.h"
#include "lib/events.h"
#include "lib/forward.h"
#include "lib/ipcache.h"
#include "lib/metrics.h"
#include "lib/parse.h"

char LICENSE[] SEC("license") = "GPL";

SEC("tc")
int from_pod(struct __sk_buff *skb)
{
	struct pkt_ctx ctx = { .dir = METRIC_EGRESS };
	int ret = parse_packet(skb, &ctx.pkt);

	if (ret == PARSE_PASS)
		return TC_ACT_OK;
	if (ret < 0)
		return drop_packet(skb, &ctx, -ret);

	/* The source must be the pod behind this veth: no spoofing. */
	struct endpoint_info *src = endpoint_lookup(ctx.pkt.saddr);
	if (!src || src->ifindex != skb->ifindex)
		return drop_packet(skb, &ctx, DROP_INVALID_SOURCE_IP);
	ctx.endpoint_id = src->endpoint_id;
	ctx.src_identity = src->identity;

	struct endpoint_info *dst = endpoint_lookup(ctx.pkt.daddr);
	struct ipcache_value *dst_info = ipcache_lookup(ctx.pkt.daddr);
	ctx.dst_identity = dst_info ? dst_info->identity : IDENTITY_WORLD;
	int to_host = dst_info && (dst_info->flags & IPCACHE_F_HOST);

	/* Nowhere else: only local pods and the node itself are reachable. */
	if (!dst && !to_host)
		return drop_packet(skb, &ctx, DROP_NO_ROUTE_OUTSIDE);

	ret = ct_process(&ctx, CT_EGRESS);
	if (ret < 0)
		return drop_packet(skb, &ctx, -ret);
	if (ret == CT_NEW)
		emit_event(skb, &ctx, EVENT_TRACE, dst ? TRACE_TO_ENDPOINT : TRACE_TO_HOST);

	metrics_count(ctx.endpoint_id, REASON_FORWARDED, ctx.dir, ctx.pkt.length);
	if (dst)
		return redirect_to_endpoint(skb, dst);
	return TC_ACT_OK;
}

SEC("tc")
int to_pod(struct __sk_buff *skb)
{
	struct pkt_ctx ctx = { .dir = METRIC_INGRESS };
	int ret = parse_packet(skb, &ctx.pkt);

	if (ret == PARSE_PASS)
		return TC_ACT_OK;
	if (ret < 0)
		return drop_packet(skb, &ctx, -ret);

	struct endpoint_info *dst = endpoint_lookup(ctx.pkt.daddr);
	if (!dst || dst->ifindex != skb->ifindex)
		return drop_packet(skb, &ctx, DROP_STALE_OR_UNROUTABLE_IP);
	ctx.endpoint_id = dst->endpoint_id;
	ctx.dst_identity = dst->identity;
	ctx.src_identity = ipcache_identity(ctx.pkt.saddr);

	ret = ct_process(&ctx, CT_INGRESS);
	if (ret < 0)
		return drop_packet(skb, &ctx, -ret);

	metrics_count(ctx.endpoint_id, REASON_FORWARDED, ctx.dir, ctx.pkt.length);
	return TC_ACT_OK;
}
