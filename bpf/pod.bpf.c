/* Per-pod datapath, attached to the host side of every pod veth:
 *   from_pod: tc ingress (packets the pod sends: its egress policy; for a
 *             local pod also that pod's ingress stage, then straight into it)
 *   to_pod:   tc egress  (packets the node's stack delivers to the pod, e.g.
 *             from the node or the L7 proxy: its ingress stage)
 * Composes the concerns in lib/; each step may end the packet with a named
 * drop reason. Replies of tracked connections skip policy (stateful); every
 * other packet is checked, or found allowed in its conntrack entry at the
 * current policy revision, so a removed allow also cuts established flows. */
#include "lib/common.h"
#include "lib/conntrack.h"
#include "lib/drop.h"
#include "lib/endpoints.h"
#include "lib/events.h"
#include "lib/forward.h"
#include "lib/ipcache.h"
#include "lib/lb_nat.h"
#include "lib/metrics.h"
#include "lib/parse.h"
#include "lib/policy.h"
#include "lib/proxy.h"

char LICENSE[] SEC("license") = "GPL";

/* Policy and conntrack for one hook, given ct_lookup's answer for `scope`:
 * returns 0 to go on, or a drop verdict. A packet of a known connection's own direction skips the policy lookups
 * while its entry holds an allow of the current policy revision for the same
 * identities (ct_allow_cached); `cacheable` is 0 where peer_ip is not the
 * packet's own peer (the L7 proxy's upstream leg, judged as its client).
 * Events: a policy verdict for every new connection a rule decided (allowed
 * or denied), and trace events as conntrack aggregates them (start, first
 * reply, SYN/FIN/RST new in a direction), so a busy stream reports a handful. */
static __always_inline int enforce(struct __sk_buff *skb, struct pkt_ctx *ctx, const struct endpoint_info *ep,
				   int ct, struct ct_entry *entry, __u8 scope, __u32 peer_identity, __u32 peer_ip,
				   __u16 peer_endpoint_id, __u8 trace_point, int cacheable)
{
	int verdict = POLICY_ALLOWED_BY_DEFAULT;
	__u32 revision = 0;

	if (ct != CT_REPLY) {
		/* Read before the lookups: a change racing them bumps it past what is stamped. */
		revision = cacheable ? policy_revision_now() : 0;
		if (ct == CT_ESTABLISHED && ct_allow_cached(entry, ctx, revision)) {
			revision = 0; /* nothing new to stamp */
		} else {
			verdict = policy_check(ctx, ep, peer_identity, cidr_identity(peer_ip), peer_endpoint_id);
			if (verdict < 0) {
				emit_event(skb, ctx, EVENT_POLICY_VERDICT, -verdict);
				return drop_packet(skb, ctx, -verdict);
			}
		}
	}
	if (entry) {
		if (revision)
			ct_stamp(entry, ctx, revision);
		if (ct_touch(entry, &ctx->pkt, ct == CT_REPLY, ctx->now))
			emit_event(skb, ctx, EVENT_TRACE, trace_point);
		return 0;
	}
	int ret = ct_create(ctx, scope, revision);
	if (ret < 0)
		return drop_packet(skb, ctx, -ret);
	if (verdict == POLICY_ALLOWED_BY_RULE)
		emit_event(skb, ctx, EVENT_POLICY_VERDICT, 0);
	emit_event(skb, ctx, EVENT_TRACE, trace_point);
	return 0;
}

/* A local pod's ingress stage, on a context of its own (dir INGRESS, the
 * pod as endpoint and destination identity): policy and conntrack (the node
 * itself may always reach its pods, Cilium's allow-localhost), reverse NAT of
 * a service reply, the forwarded count. Run by to_pod for what the node's
 * stack delivers and by from_pod for pod-to-pod. peer_ip is the address
 * policy's CIDR lookup uses: the source, or the client behind the L7 proxy.
 * Returns 0 to deliver, or a drop verdict. */
static __always_inline int ingress_stage(struct __sk_buff *skb, struct pkt_ctx *ctx, const struct endpoint_info *dst,
					 __u32 peer_ip)
{
	struct ct_entry *entry;
	int ct = ct_lookup(ctx, CT_INGRESS, &entry);
	int ret;

	/* The node itself may always reach its pods (Cilium's allow-localhost). */
	if (ctx->src_identity == IDENTITY_HOST) {
		if (entry) {
			if (ct_touch(entry, &ctx->pkt, ct == CT_REPLY, ctx->now))
				emit_event(skb, ctx, EVENT_TRACE, TRACE_TO_ENDPOINT);
		} else if ((ret = ct_create(ctx, CT_INGRESS, 0)) < 0) {
			return drop_packet(skb, ctx, -ret);
		} else {
			emit_event(skb, ctx, EVENT_TRACE, TRACE_TO_ENDPOINT);
		}
	} else {
		ret = enforce(skb, ctx, dst, ct, entry, CT_INGRESS, ctx->src_identity, peer_ip, 0, TRACE_TO_ENDPOINT,
			      peer_ip == ctx->pkt.saddr);
		if (ret)
			return ret;
	}

	lb_revnat_to_client(skb, ctx);
	metrics_count(ctx->endpoint_id, REASON_FORWARDED, ctx->dir, ctx->pkt.length);
	return 0;
}

SEC("tc")
int from_pod(struct __sk_buff *skb)
{
	struct pkt_ctx ctx = { .dir = METRIC_EGRESS, .ifindex = skb->ifindex, .now = mono_seconds() };
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

	/* A service VIP becomes its backend here; policy then judges the backend. */
	ret = lb_dnat_to_backend(skb, &ctx);
	if (ret < 0)
		return lb_refuse(skb, &ctx, -ret);

	/* Who the destination is, without the ipcache's longest-prefix search where
	 * possible: a local pod's identity is in its endpoint entry (written with its
	 * ipcache entry), and a known connection to the node, allowed at the current
	 * policy revision (bumped after every ipcache change too), keeps it. */
	struct ct_entry *entry;
	int ct = ct_lookup(&ctx, CT_EGRESS, &entry);
	struct endpoint_info *dst = endpoint_lookup(ctx.pkt.daddr);
	int to_host = 0;
	if (dst) {
		ctx.dst_identity = dst->identity;
	} else if (ct == CT_ESTABLISHED && entry->dst_identity == IDENTITY_HOST && entry->policy_revision &&
		   entry->policy_revision == policy_revision_now()) {
		ctx.dst_identity = IDENTITY_HOST;
		to_host = 1;
	} else {
		struct ipcache_value *dst_info = ipcache_lookup(ctx.pkt.daddr);
		ctx.dst_identity = dst_info ? dst_info->identity : IDENTITY_WORLD;
		to_host = dst_info && (dst_info->flags & IPCACHE_F_HOST);
	}

	/* Nowhere else: only local pods and the node itself are reachable. */
	if (!dst && !to_host)
		return drop_packet(skb, &ctx, DROP_NO_ROUTE_OUTSIDE);
	/* Routing to another pod costs a hop: a packet with none left goes no further. */
	if (dst && ctx.pkt.ttl <= 1)
		return drop_packet(skb, &ctx, DROP_TTL_EXCEEDED);

	/* Towards a pod, this is the source's egress stage (from-endpoint); the destination's
	 * ingress stage reports to-endpoint for the same packet, so the two are told apart. */
	ret = enforce(skb, &ctx, src, ct, entry, CT_EGRESS, ctx.dst_identity, ctx.pkt.daddr, dst ? dst->endpoint_id : 0,
		      dst ? TRACE_FROM_ENDPOINT : TRACE_TO_HOST, 1);
	if (ret)
		return ret;

	/* L7 policy: DNAT to the agent's proxy, which the host stack delivers. */
	ret = proxy_redirect(skb, &ctx, src, dst);
	if (ret < 0)
		return drop_packet(skb, &ctx, -ret);
	if (!dst || ret) {
		metrics_count(ctx.endpoint_id, REASON_FORWARDED, ctx.dir, ctx.pkt.length);
		return TC_ACT_OK;
	}
	ret = rewrite_for_endpoint(skb, &ctx.pkt, dst);
	if (ret < 0)
		return drop_packet(skb, &ctx, -ret);
	metrics_count(ctx.endpoint_id, REASON_FORWARDED, ctx.dir, ctx.pkt.length);

	/* Local delivery: the destination's ingress stage here, as to_pod would
	 * run it, with its own context; then into the pod without the veth hop. */
	struct pkt_ctx in = {
		.pkt = ctx.pkt,
		.dir = METRIC_INGRESS,
		.endpoint_id = dst->endpoint_id,
		.src_identity = ctx.src_identity,
		.dst_identity = dst->identity,
		.ifindex = dst->ifindex,
		.now = ctx.now,
	};
	ret = ingress_stage(skb, &in, dst, in.pkt.saddr);
	if (ret)
		return ret;
	return redirect_into_endpoint(skb, dst);
}

SEC("tc")
int to_pod(struct __sk_buff *skb)
{
	/* from_pod already ran this pod's ingress stage (redirect_into_endpoint's fallback). */
	if (skb->mark == MARK_INGRESS_DONE) {
		skb->mark = 0;
		return TC_ACT_OK;
	}
	struct pkt_ctx ctx = { .dir = METRIC_INGRESS, .ifindex = skb->ifindex, .now = mono_seconds() };
	int ret = parse_packet(skb, &ctx.pkt);

	if (ret == PARSE_PASS)
		return TC_ACT_OK;
	if (ret < 0)
		return drop_packet(skb, &ctx, -ret);
	/* Replies of the L7 proxy come back from the original server's address. */
	if ((ret = proxy_reverse_nat(skb, &ctx.pkt)) < 0)
		return drop_packet(skb, &ctx, -ret);

	struct endpoint_info *dst = endpoint_lookup(ctx.pkt.daddr);
	if (!dst || dst->ifindex != skb->ifindex)
		return drop_packet(skb, &ctx, DROP_STALE_OR_UNROUTABLE_IP);
	ctx.endpoint_id = dst->endpoint_id;
	ctx.dst_identity = dst->identity;
	ctx.src_identity = ipcache_identity(ctx.pkt.saddr);
	/* The L7 proxy's upstream leg is judged as its client, never as the node. */
	__u32 peer_ip = ctx.pkt.saddr;
	__u32 client = ctx.src_identity == IDENTITY_HOST ? proxy_upstream_client(skb, &ctx.pkt) : 0;
	if (client) {
		peer_ip = client;
		ctx.src_identity = ipcache_identity(client);
	}

	ret = ingress_stage(skb, &ctx, dst, peer_ip);
	return ret ? ret : TC_ACT_OK;
}
