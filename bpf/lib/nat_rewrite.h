/* Address and port rewrite of a TCP or UDP packet, with incremental checksum
 * fixes: the one NAT primitive, shared by service translation (lib/lb_nat.h)
 * and L7 proxy redirection (lib/proxy.h).
 *
 * API:
 *   nat_rewrite(skb, pkt, side, new_addr, new_port) -> 0, or
 *       -DROP_CT_TRUNCATED_OR_INVALID_HEADER (not TCP/UDP, or a helper failed).
 *       Replaces pkt's source (NAT_SOURCE) or destination (NAT_DEST) address
 *       and the port beside it, then updates pkt to match.
 *
 * The L4 checksum covers the pseudo-header, so an address change fixes both
 * checksums; a port change only the L4 one. A UDP checksum of 0 means "none"
 * and stays 0 (BPF_F_MARK_MANGLED_0). The L4 header is found at pkt->l4_off,
 * so IPv4 options are handled. */
#pragma once

#include <stddef.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include "lib/common.h"

enum nat_side {
	NAT_SOURCE = 0,
	NAT_DEST = 1,
};

#define NAT_IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))
#define NAT_SADDR_OFF (ETH_HLEN + offsetof(struct iphdr, saddr))
#define NAT_DADDR_OFF (ETH_HLEN + offsetof(struct iphdr, daddr))

static __always_inline int nat_rewrite(struct __sk_buff *skb, struct packet *pkt, enum nat_side side, __u32 new_addr,
				       __u16 new_port)
{
	__u32 csum_off, l4_flags;

	if (pkt->proto == IPPROTO_TCP) {
		csum_off = pkt->l4_off + offsetof(struct tcphdr, check);
		l4_flags = 0;
	} else if (pkt->proto == IPPROTO_UDP) {
		csum_off = pkt->l4_off + offsetof(struct udphdr, check);
		l4_flags = BPF_F_MARK_MANGLED_0;
	} else {
		return -DROP_CT_TRUNCATED_OR_INVALID_HEADER;
	}
	/* source and dest sit at the same offsets in TCP and UDP headers */
	__u32 addr_off = side == NAT_DEST ? NAT_DADDR_OFF : NAT_SADDR_OFF;
	__u32 port_off = pkt->l4_off + (side == NAT_DEST ? offsetof(struct udphdr, dest) : offsetof(struct udphdr, source));
	__u32 old_addr = side == NAT_DEST ? pkt->daddr : pkt->saddr;
	__u16 old_port = side == NAT_DEST ? pkt->dport : pkt->sport;

	if (old_addr != new_addr &&
	    (bpf_l4_csum_replace(skb, csum_off, old_addr, new_addr, BPF_F_PSEUDO_HDR | l4_flags | sizeof(new_addr)) < 0 ||
	     bpf_l3_csum_replace(skb, NAT_IP_CSUM_OFF, old_addr, new_addr, sizeof(new_addr)) < 0 ||
	     bpf_skb_store_bytes(skb, addr_off, &new_addr, sizeof(new_addr), 0) < 0))
		return -DROP_CT_TRUNCATED_OR_INVALID_HEADER;
	if (old_port != new_port &&
	    (bpf_l4_csum_replace(skb, csum_off, old_port, new_port, l4_flags | sizeof(new_port)) < 0 ||
	     bpf_skb_store_bytes(skb, port_off, &new_port, sizeof(new_port), 0) < 0))
		return -DROP_CT_TRUNCATED_OR_INVALID_HEADER;
	if (side == NAT_DEST) {
		pkt->daddr = new_addr;
		pkt->dport = new_port;
	} else {
		pkt->saddr = new_addr;
		pkt->sport = new_port;
	}
	return 0;
}
