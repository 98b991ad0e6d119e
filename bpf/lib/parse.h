/* Packet parsing: Ethernet, IPv4 and the L4 ports/flags the datapath keys on.
 *
 * API:
 *   parse_packet(skb, pkt) -> PARSE_OK, PARSE_PASS (ARP: not ours to judge)
 *                             or -drop_reason
 * IPv6 is not supported yet: it is dropped as UNSUPPORTED_L3_PROTOCOL (pods
 * get no IPv6 address). IPv4 fragments are dropped as
 * IP_FRAGMENTATION_NOT_SUPPORTED, since non-first fragments carry no ports;
 * the addresses and protocol are parsed first, so the drop event names them. */
#pragma once

#include <linux/tcp.h>
#include <linux/udp.h>

#include "lib/common.h"

#define PARSE_OK 0
#define PARSE_PASS 1

/* linux/icmp.h drags in libc headers; the datapath needs only this much. */
struct icmp_header {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__u16 echo_id;
	__u16 echo_sequence;
};
#define ICMP_ECHOREPLY 0
#define ICMP_ECHO 8

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

static __always_inline int parse_packet(struct __sk_buff *skb, struct packet *pkt)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return -DROP_CT_TRUNCATED_OR_INVALID_HEADER;
	pkt->length = skb->len;
	if (eth->h_proto == bpf_htons(ETH_P_ARP))
		return PARSE_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return -DROP_UNSUPPORTED_L3_PROTOCOL;

	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return -DROP_CT_TRUNCATED_OR_INVALID_HEADER;
	__u32 ihl = ip->ihl * 4;
	if (ip->version != 4 || ihl < sizeof(*ip))
		return -DROP_CT_TRUNCATED_OR_INVALID_HEADER;

	pkt->saddr = ip->saddr;
	pkt->daddr = ip->daddr;
	pkt->proto = ip->protocol;
	pkt->ttl = ip->ttl;
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return -DROP_IP_FRAGMENTATION_NOT_SUPPORTED;
	void *l4 = (void *)ip + ihl;
	pkt->l4_off = ETH_HLEN + ihl;

	switch (ip->protocol) {
	case IPPROTO_TCP: {
		struct tcphdr *tcp = l4;
		if ((void *)(tcp + 1) > data_end)
			return -DROP_CT_TRUNCATED_OR_INVALID_HEADER;
		pkt->sport = tcp->source;
		pkt->dport = tcp->dest;
		pkt->tcp_flags = ((__u8 *)tcp)[13];
		break;
	}
	case IPPROTO_UDP: {
		struct udphdr *udp = l4;
		if ((void *)(udp + 1) > data_end)
			return -DROP_CT_TRUNCATED_OR_INVALID_HEADER;
		pkt->sport = udp->source;
		pkt->dport = udp->dest;
		break;
	}
	case IPPROTO_ICMP: {
		struct icmp_header *icmp = l4;
		if ((void *)(icmp + 1) > data_end)
			return -DROP_CT_TRUNCATED_OR_INVALID_HEADER;
		pkt->icmp_type = icmp->type;
		pkt->icmp_code = icmp->code;
		/* Echo request and reply share the id: it keys both directions. */
		if (icmp->type == ICMP_ECHO || icmp->type == ICMP_ECHOREPLY) {
			pkt->sport = icmp->echo_id;
			pkt->dport = icmp->echo_id;
		}
		break;
	}
	default:
		return -DROP_UNKNOWN_L4_PROTOCOL;
	}
	return PARSE_OK;
}
