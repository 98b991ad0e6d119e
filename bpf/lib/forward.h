/* Delivery: hand a packet to a local pod as the router between pods would:
 * one hop (TTL down by one, the IPv4 checksum fixed; none left is
 * TTL_EXCEEDED) and the MACs rewritten.
 *
 * API:
 *   rewrite_for_endpoint(skb, pkt, ep) -> 0, or a negative drop reason
 *   redirect_into_endpoint(skb, ep) -> TC_ACT_REDIRECT straight into the pod's eth0
 *       (bpf_redirect_peer: no veth transmit, no backlog; to_pod does not run,
 *       so the caller has done the pod's ingress stage). Where the helper
 *       refuses, the veth's egress instead, marked so to_pod lets it through
 *       without judging it twice. Only from tc ingress. */
#pragma once

#include <stddef.h>

#include "abi/drop_reasons.h"
#include "abi/endpoint.h"
#include "lib/common.h"


static __always_inline int rewrite_for_endpoint(struct __sk_buff *skb, const struct packet *pkt,
						const struct endpoint_info *ep)
{
	if (pkt->ttl <= 1)
		return -DROP_TTL_EXCEEDED;
	/* Written in place (direct packet access): a store helper per field cost more
	 * than the rest of a known connection's packet. Earlier NAT helpers may have
	 * moved the data, so the pointers are taken here. */
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return -DROP_WRITE_ERROR;
	/* TTL and protocol share one 16-bit word of the header checksum (RFC 1624:
	 * HC' = ~(~HC + ~m + m')); the sum is the same in either byte order. */
	__u16 *word = (__u16 *)&ip->ttl;
	__u16 old_word = *word;
	ip->ttl = pkt->ttl - 1;
	__u32 sum = (__u16)~ip->check + (__u16)~old_word + *word;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	ip->check = (__u16)~sum;
	__builtin_memcpy(eth->h_dest, ep->pod_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, ep->host_mac, ETH_ALEN);
	return 0;
}

static __always_inline int redirect_into_endpoint(struct __sk_buff *skb, const struct endpoint_info *ep)
{
	int ret = bpf_redirect_peer(ep->ifindex, 0);

	if (ret == TC_ACT_REDIRECT)
		return ret;
	skb->mark = MARK_INGRESS_DONE;
	return bpf_redirect(ep->ifindex, 0);
}
