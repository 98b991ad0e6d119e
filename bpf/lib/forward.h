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

#define IP_TTL_OFF (ETH_HLEN + offsetof(struct iphdr, ttl))
#define IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))

static __always_inline int rewrite_for_endpoint(struct __sk_buff *skb, const struct packet *pkt,
						const struct endpoint_info *ep)
{
	if (pkt->ttl <= 1)
		return -DROP_TTL_EXCEEDED;
	/* TTL and protocol share one 16-bit word of the header checksum. */
	__u16 old_word = bpf_htons(((__u16)pkt->ttl << 8) | pkt->proto);
	__u16 new_word = bpf_htons(((__u16)(pkt->ttl - 1) << 8) | pkt->proto);
	__u8 ttl = pkt->ttl - 1;

	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_word, new_word, 2) < 0 ||
	    bpf_skb_store_bytes(skb, IP_TTL_OFF, &ttl, 1, 0) < 0 ||
	    bpf_skb_store_bytes(skb, 0, ep->pod_mac, ETH_ALEN, 0) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_ALEN, ep->host_mac, ETH_ALEN, 0) < 0)
		return -DROP_WRITE_ERROR;
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
