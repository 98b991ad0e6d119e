/* Refusing a connection at once instead of letting it time out: a TCP SYN
 * that cannot be served is turned, in place, into the RST+ACK the server
 * would have sent, a UDP datagram into the ICMP port unreachable a host
 * would send, and either is bounced back to the pod.
 *
 * API:
 *   tcp_reset_reply(skb) -> 0 when the frame is now a RST to send back out
 *                           of the veth it came in on, -1 when it cannot be
 *                           (IP options, short frame): drop it then.
 *   icmp_port_unreachable_reply(skb) -> the same, for a UDP datagram. */
#pragma once

#include <stddef.h>
#include <linux/tcp.h>

#include "lib/common.h"

struct tcp_reset_headers {
	struct iphdr ip;
	struct tcphdr tcp;
};

static __always_inline __u16 csum_fold32(__s64 partial)
{
	__u32 c = (__u32)partial;

	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	return (__u16)~c;
}

/* Replaces the frame by `len` bytes of headers after its Ethernet header, with
 * the MACs swapped, so it goes back where it came from. */
static __always_inline int bounce(struct __sk_buff *skb, const struct ethhdr *eth, const void *headers, __u32 len)
{
	if (bpf_skb_change_tail(skb, ETH_HLEN + len, 0) < 0 ||
	    bpf_skb_store_bytes(skb, 0, eth->h_source, ETH_ALEN, 0) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_ALEN, eth->h_dest, ETH_ALEN, 0) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_HLEN, headers, len, 0) < 0)
		return -1;
	return 0;
}

static __always_inline int tcp_reset_reply(struct __sk_buff *skb)
{
	struct ethhdr eth;
	struct iphdr ip;
	struct tcphdr tcp;

	if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)) < 0 || bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0 ||
	    ip.ihl != 5 || bpf_skb_load_bytes(skb, ETH_HLEN + sizeof(ip), &tcp, sizeof(tcp)) < 0)
		return -1;
	__u32 data_len = bpf_ntohs(ip.tot_len) - sizeof(ip) - tcp.doff * 4;

	struct tcp_reset_headers h = {};
	h.ip.version = 4;
	h.ip.ihl = 5;
	h.ip.ttl = 64;
	h.ip.protocol = IPPROTO_TCP;
	h.ip.tot_len = bpf_htons(sizeof(h));
	h.ip.saddr = ip.daddr;
	h.ip.daddr = ip.saddr;
	h.tcp.source = tcp.dest;
	h.tcp.dest = tcp.source;
	h.tcp.doff = 5;
	h.tcp.rst = 1;
	h.tcp.ack = 1;
	/* Acknowledges the SYN (one sequence number) and any data with it. */
	h.tcp.ack_seq = bpf_htonl(bpf_ntohl(tcp.seq) + 1 + data_len);
	h.ip.check = csum_fold32(bpf_csum_diff(0, 0, (__be32 *)&h.ip, sizeof(h.ip), 0));
	struct {
		__u32 saddr;
		__u32 daddr;
		__u8 zero;
		__u8 proto;
		__u16 length;
	} pseudo = { h.ip.saddr, h.ip.daddr, 0, IPPROTO_TCP, bpf_htons(sizeof(h.tcp)) };
	__s64 sum = bpf_csum_diff(0, 0, (__be32 *)&pseudo, sizeof(pseudo), 0);
	sum = bpf_csum_diff(0, 0, (__be32 *)&h.tcp, sizeof(h.tcp), (__u32)sum);
	h.tcp.check = csum_fold32(sum);

	return bounce(skb, &eth, &h, sizeof(h));
}

/* RFC 792's destination unreachable header (linux/icmp.h drags in libc headers). */
#define ICMP_TYPE_DEST_UNREACH 3
#define ICMP_CODE_PORT_UNREACH 3
struct icmp_unreach_hdr {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__u32 unused;
};

struct icmp_unreachable_headers {
	struct iphdr ip;
	struct icmp_unreach_hdr icmp;
	struct iphdr quoted_ip;   /* the datagram's own header ... */
	__u8 quoted_l4[8];        /* ... and its first 8 bytes: the UDP header */
};

static __always_inline int icmp_port_unreachable_reply(struct __sk_buff *skb)
{
	struct ethhdr eth;
	struct icmp_unreachable_headers h = {};

	if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)) < 0 ||
	    bpf_skb_load_bytes(skb, ETH_HLEN, &h.quoted_ip, sizeof(h.quoted_ip)) < 0 || h.quoted_ip.ihl != 5 ||
	    bpf_skb_load_bytes(skb, ETH_HLEN + sizeof(h.quoted_ip), h.quoted_l4, sizeof(h.quoted_l4)) < 0)
		return -1;
	h.ip.version = 4;
	h.ip.ihl = 5;
	h.ip.ttl = 64;
	h.ip.protocol = IPPROTO_ICMP;
	h.ip.tot_len = bpf_htons(sizeof(h));
	h.ip.saddr = h.quoted_ip.daddr;
	h.ip.daddr = h.quoted_ip.saddr;
	h.ip.check = csum_fold32(bpf_csum_diff(0, 0, (__be32 *)&h.ip, sizeof(h.ip), 0));
	h.icmp.type = ICMP_TYPE_DEST_UNREACH;
	h.icmp.code = ICMP_CODE_PORT_UNREACH;
	/* The ICMP checksum covers its header and the quoted bytes, no pseudo-header. */
	h.icmp.checksum = csum_fold32(bpf_csum_diff(0, 0, (__be32 *)&h.icmp,
						    sizeof(h) - offsetof(struct icmp_unreachable_headers, icmp), 0));

	return bounce(skb, &eth, &h, sizeof(h));
}
