/* Delivery: hand a packet to a local pod's veth, rewriting the MACs as the
 * router between pods would.
 *
 * API:
 *   return redirect_to_endpoint(skb, ep); */
#pragma once

#include "abi/endpoint.h"
#include "lib/common.h"

static __always_inline int redirect_to_endpoint(struct __sk_buff *skb, const struct endpoint_info *ep)
{
	if (bpf_skb_store_bytes(skb, 0, ep->pod_mac, ETH_ALEN, 0) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_ALEN, ep->host_mac, ETH_ALEN, 0) < 0)
		return TC_ACT_SHOT;
	return bpf_redirect(ep->ifindex, 0);
}
