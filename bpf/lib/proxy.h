/* Redirection of L7-policed TCP connections to the agent's HTTP proxy.
 *
 * API:
 *   proxy_redirect(skb, ctx, src_ep, dst_ep) -> 0 (not proxied), 1 (DNATed to
 *       the proxy: hand the packet to the host stack) or -drop_reason.
 *       Called by from_pod once policy_check allowed the packet: its
 *       ctx->proxy_port is the client's egress answer.
 *   proxy_reverse_nat(skb, pkt) -> 0, or -drop_reason. Called by to_pod before
 *       anything else: rewrites the proxy's replies so they come from the
 *       original server, and updates pkt to match.
 *   proxy_upstream_client(skb, pkt) -> the client's address (network order)
 *       when the packet is the proxy's upstream leg (from the proxy's address,
 *       marked MARK_PROXY_UPSTREAM_MAGIC), else 0. to_pod then judges it as
 *       the client: the upstream leg never borrows the node's admission.
 *
 * The decision is per connection, taken on the SYN: a policy entry (the
 * client's egress or the server's ingress) carrying a proxy_port sends it to
 * the proxy. Later packets follow proxy_flows, so removing an L7 rule moves
 * new connections off the proxy but does not break established ones. The
 * proxy listens on the node's address (a local address: plain local
 * delivery, no policy routing, no TPROXY) and reads proxy_origin to learn
 * the original destination and the client's identity.
 *
 * The proxy's connection to the server comes from the node's address; it
 * carries the client's address in its socket mark, and to_pod runs the
 * server's ingress stage for the client (policy by the client's identity and
 * CIDR identity), not for the node, which it would always admit. */
#pragma once

#include <linux/tcp.h>

#include "abi/endpoint.h"
#include "abi/policy.h"
#include "abi/proxy.h"
#include "lib/common.h"
#include "lib/ipcache.h"
#include "lib/nat_rewrite.h"
#include "lib/policy.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct proxy_config);
} proxy_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PROXY_FLOWS_MAX);
	__type(key, struct proxy_flow_key);
	__type(value, struct proxy_flow);
} proxy_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PROXY_FLOWS_MAX);
	__type(key, struct proxy_origin_key);
	__type(value, struct proxy_origin);
} proxy_origin SEC(".maps");

/* The proxy port the server's ingress entry for this packet asks for, or 0 (no
 * entry asks, or a deny covers it). The client's egress side needs no lookup:
 * policy_check has just left the answer in ctx->proxy_port. Order as policy_check's. */
static __always_inline __u16 ingress_proxy_port(__u16 endpoint_id, __u32 peer_identity, __u32 peer_cidr_identity,
						const struct packet *pkt)
{
	struct policy_key key = {
		.prefixlen = POLICY_PREFIX_FULL,
		.endpoint_id = endpoint_id,
		.direction = METRIC_INGRESS,
		.identity = peer_identity,
		.protocol = pkt->proto,
		.dport = pkt->dport,
	};
	struct policy_entry *exact = bpf_map_lookup_elem(&policy, &key);
	struct policy_entry *cidr = 0;
	if (peer_cidr_identity) {
		key.identity = peer_cidr_identity;
		cidr = bpf_map_lookup_elem(&policy, &key);
	}
	key.identity = 0;
	struct policy_entry *any = bpf_map_lookup_elem(&policy, &key);
	/* A deny in any of them wins, as in policy_check: the ingress stage then drops the packet
	 * (an allow with a proxy port for this peer must not send it to the proxy instead). */
	if ((exact && (exact->flags & POLICY_F_DENY)) || (cidr && (cidr->flags & POLICY_F_DENY)) ||
	    (any && (any->flags & POLICY_F_DENY)))
		return 0;
	return exact && exact->proxy_port ? exact->proxy_port
	       : cidr && cidr->proxy_port ? cidr->proxy_port
	       : any ? any->proxy_port : 0;
}

static __always_inline int proxy_redirect(struct __sk_buff *skb, struct pkt_ctx *ctx,
					  const struct endpoint_info *src, const struct endpoint_info *dst)
{
	struct packet *pkt = &ctx->pkt;
	__u32 zero = 0;

	if (pkt->proto != IPPROTO_TCP)
		return 0;
	struct proxy_config *cfg = bpf_map_lookup_elem(&proxy_config, &zero);
	if (!cfg || !cfg->proxy_ip)
		return 0;

	struct proxy_flow_key fkey = {
		.saddr = pkt->saddr, .daddr = pkt->daddr, .sport = pkt->sport, .dport = pkt->dport,
	};
	__u16 proxy_port = 0;
	int syn = (pkt->tcp_flags & (TCP_BIT_SYN | TCP_BIT_ACK)) == TCP_BIT_SYN;

	if (syn) {
		/* A new connection: the policy of today decides, on both sides. */
		__u16 flags = 0;
		proxy_port = ctx->proxy_port; /* the client's egress entry, from policy_check */
		if (proxy_port)
			flags |= PROXY_F_EGRESS;
		if (dst) {
			__u16 in_port = ingress_proxy_port(dst->endpoint_id, ctx->src_identity, cidr_identity(pkt->saddr), pkt);
			if (in_port) {
				flags |= PROXY_F_INGRESS;
				proxy_port = in_port;
			}
		}
		if (!proxy_port) {
			/* A lookup takes no lock; most SYNs find nothing to delete. */
			if (bpf_map_lookup_elem(&proxy_flows, &fkey))
				bpf_map_delete_elem(&proxy_flows, &fkey);
			return 0;
		}
		struct proxy_flow flow = { .proxy_port = proxy_port };
		struct proxy_origin_key okey = {
			.client_ip = pkt->saddr, .client_port = pkt->sport, .proxy_port = proxy_port,
		};
		struct proxy_origin origin = {
			.orig_daddr = pkt->daddr, .orig_dport = pkt->dport, .flags = flags,
			.src_identity = ctx->src_identity, .dst_identity = ctx->dst_identity,
			.src_endpoint_id = src->endpoint_id, .dst_endpoint_id = dst ? dst->endpoint_id : 0,
		};
		if (bpf_map_update_elem(&proxy_origin, &okey, &origin, BPF_ANY) < 0 ||
		    bpf_map_update_elem(&proxy_flows, &fkey, &flow, BPF_ANY) < 0)
			return -DROP_CT_MAP_INSERTION_FAILED;
	} else {
		struct proxy_flow *flow = bpf_map_lookup_elem(&proxy_flows, &fkey);
		if (!flow)
			return 0;
		proxy_port = flow->proxy_port;
	}
	int ret = nat_rewrite(skb, pkt, NAT_DEST, cfg->proxy_ip, proxy_port);
	return ret < 0 ? ret : 1;
}

static __always_inline int proxy_reverse_nat(struct __sk_buff *skb, struct packet *pkt)
{
	__u32 zero = 0;

	if (pkt->proto != IPPROTO_TCP)
		return 0;
	struct proxy_config *cfg = bpf_map_lookup_elem(&proxy_config, &zero);
	if (!cfg || !cfg->proxy_ip || pkt->saddr != cfg->proxy_ip)
		return 0;
	struct proxy_origin_key okey = {
		.client_ip = pkt->daddr, .client_port = pkt->dport, .proxy_port = pkt->sport,
	};
	struct proxy_origin *origin = bpf_map_lookup_elem(&proxy_origin, &okey);
	if (!origin)
		return 0;
	return nat_rewrite(skb, pkt, NAT_SOURCE, origin->orig_daddr, origin->orig_dport);
}

static __always_inline __u32 proxy_upstream_client(const struct __sk_buff *skb, const struct packet *pkt)
{
	__u32 zero = 0;

	if ((skb->mark & MARK_PROXY_UPSTREAM_MAGIC_MASK) != MARK_PROXY_UPSTREAM_MAGIC)
		return 0;
	struct proxy_config *cfg = bpf_map_lookup_elem(&proxy_config, &zero);
	if (!cfg || !cfg->proxy_ip || pkt->saddr != cfg->proxy_ip)
		return 0;
	__u32 net = bpf_ntohl(cfg->proxy_ip) & MARK_PROXY_UPSTREAM_MAGIC_MASK;
	return bpf_htonl(net | (skb->mark & MARK_PROXY_UPSTREAM_ADDR_MASK));
}
