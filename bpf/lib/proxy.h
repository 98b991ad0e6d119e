/* Redirection of L7-policed TCP connections to the agent's HTTP proxy.
 *
 * API:
 *   proxy_redirect(skb, ctx, src_ep, dst_ep) -> 0 (not proxied), 1 (DNATed to
 *       the proxy: hand the packet to the host stack) or -drop_reason.
 *       Called by from_pod once policy allowed the packet.
 *   proxy_reverse_nat(skb, pkt) -> 0, or -drop_reason. Called by to_pod before
 *       anything else: rewrites the proxy's replies so they come from the
 *       original server, and updates pkt to match.
 *
 * The decision is per connection, taken on the SYN: a policy entry (the
 * client's egress or the server's ingress) carrying a proxy_port sends it to
 * the proxy. Later packets follow proxy_flows, so removing an L7 rule moves
 * new connections off the proxy but does not break established ones. The
 * proxy listens on the node's address (a local address: plain local
 * delivery, no policy routing, no TPROXY) and reads proxy_origin to learn
 * the original destination and the client's identity. */
#pragma once

#include <stddef.h>
#include <linux/tcp.h>

#include "abi/endpoint.h"
#include "abi/policy.h"
#include "abi/proxy.h"
#include "lib/common.h"
#include "lib/ipcache.h"
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

#define PROXY_IP_OFF (ETH_HLEN)
#define PROXY_IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))
#define PROXY_IP_SADDR_OFF (ETH_HLEN + offsetof(struct iphdr, saddr))
#define PROXY_IP_DADDR_OFF (ETH_HLEN + offsetof(struct iphdr, daddr))

/* The proxy port of the allow entry that covers the packet, or 0 (no entry
 * asks for the proxy, or a deny covers it: policy_check decides those). */
static __always_inline __u16 policy_proxy_port(__u16 endpoint_id, __u8 dir, __u32 peer_identity,
					       __u32 peer_cidr_identity, const struct packet *pkt)
{
	struct policy_key key = {
		.prefixlen = POLICY_PREFIX_FULL,
		.endpoint_id = endpoint_id,
		.direction = dir,
		.identity = peer_identity,
		.protocol = pkt->proto,
		.dport = pkt->dport,
	};
	struct policy_entry *e = bpf_map_lookup_elem(&policy, &key);
	if (e && !(e->flags & POLICY_F_DENY) && e->proxy_port)
		return e->proxy_port;
	if (peer_cidr_identity) {
		key.identity = peer_cidr_identity;
		e = bpf_map_lookup_elem(&policy, &key);
		if (e && !(e->flags & POLICY_F_DENY) && e->proxy_port)
			return e->proxy_port;
	}
	key.identity = 0;
	e = bpf_map_lookup_elem(&policy, &key);
	if (e && !(e->flags & POLICY_F_DENY) && e->proxy_port)
		return e->proxy_port;
	return 0;
}

/* Rewrites one address and one port of the packet, fixing both checksums. */
static __always_inline int proxy_rewrite(struct __sk_buff *skb, __u32 addr_off, __u32 old_addr, __u32 new_addr,
					 __u32 port_off, __u16 old_port, __u16 new_port)
{
	__u32 l4_csum_off = ETH_HLEN + sizeof(struct iphdr) + offsetof(struct tcphdr, check);

	if (bpf_l4_csum_replace(skb, l4_csum_off, old_addr, new_addr, BPF_F_PSEUDO_HDR | sizeof(new_addr)) < 0 ||
	    bpf_l3_csum_replace(skb, PROXY_IP_CSUM_OFF, old_addr, new_addr, sizeof(new_addr)) < 0 ||
	    bpf_skb_store_bytes(skb, addr_off, &new_addr, sizeof(new_addr), 0) < 0)
		return -DROP_CT_TRUNCATED_OR_INVALID_HEADER;
	if (old_port != new_port &&
	    (bpf_l4_csum_replace(skb, l4_csum_off, old_port, new_port, sizeof(new_port)) < 0 ||
	     bpf_skb_store_bytes(skb, port_off, &new_port, sizeof(new_port), 0) < 0))
		return -DROP_CT_TRUNCATED_OR_INVALID_HEADER;
	return 0;
}

static __always_inline int ip_has_options(struct __sk_buff *skb)
{
	__u8 vihl = 0;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &vihl, 1) < 0)
		return 1;
	return (vihl & 0x0f) != 5;
}

static __always_inline int proxy_redirect(struct __sk_buff *skb, struct pkt_ctx *ctx,
					  const struct endpoint_info *src, const struct endpoint_info *dst)
{
	const struct packet *pkt = &ctx->pkt;
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
		proxy_port = policy_proxy_port(src->endpoint_id, METRIC_EGRESS, ctx->dst_identity,
					       cidr_identity(pkt->daddr), pkt);
		if (proxy_port)
			flags |= PROXY_F_EGRESS;
		if (dst) {
			__u16 in_port = policy_proxy_port(dst->endpoint_id, METRIC_INGRESS, ctx->src_identity,
							  cidr_identity(pkt->saddr), pkt);
			if (in_port) {
				flags |= PROXY_F_INGRESS;
				proxy_port = in_port;
			}
		}
		if (!proxy_port) {
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
	/* The rewrite below assumes a 20-byte IP header, like the checksum offsets. */
	if (ip_has_options(skb))
		return 0;
	int ret = proxy_rewrite(skb, PROXY_IP_DADDR_OFF, pkt->daddr, cfg->proxy_ip,
				ETH_HLEN + sizeof(struct iphdr) + offsetof(struct tcphdr, dest), pkt->dport, proxy_port);
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
	if (!origin || ip_has_options(skb))
		return 0;
	__u32 orig_daddr = origin->orig_daddr;
	__u16 orig_dport = origin->orig_dport;
	int ret = proxy_rewrite(skb, PROXY_IP_SADDR_OFF, pkt->saddr, orig_daddr,
				ETH_HLEN + sizeof(struct iphdr) + offsetof(struct tcphdr, source), pkt->sport, orig_dport);
	if (ret < 0)
		return ret;
	pkt->saddr = orig_daddr;
	pkt->sport = orig_dport;
	return 0;
}
