/* Includes, the parsed-packet record and the per-packet context shared by all
 * datapath concerns. */
#pragma once

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "abi/drop_reasons.h"
#include "abi/identity.h"
#include "abi/metrics.h"

/* What the parser extracted from an IPv4 packet. */
struct packet {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 tcp_flags; /* FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10 */
	__u8 icmp_type;
	__u8 icmp_code;
	__u32 length;
	__u8 ttl;
	__u16 l4_off; /* where the TCP/UDP/ICMP header starts: after Ethernet and IPv4 with options */
};

/* One packet's journey through a program: what it is, who sent it, where to. */
struct pkt_ctx {
	struct packet pkt;
	__u32 src_identity;
	__u32 dst_identity;
	__u16 endpoint_id; /* the local pod this hook belongs to */
	__u8 dir;          /* enum metric_dir */
	__u8 is_reply;
	__u8 policy_match_type; /* set by the policy lookup, for verdict events */
	__u16 proxy_port;       /* set by the policy lookup: the L7 proxy its allowing entry asks for, or 0 */
	__u32 ifindex;          /* the veth events name: the program's own, or the destination's for its ingress stage */
	__u32 policy_ref;       /* set by the policy lookup: the rule (or default-deny causes) that decided, or 0 */
	__u32 now;              /* mono_seconds() when the program started: conntrack's clock */
};

#define TCP_BIT_FIN 0x01
#define TCP_BIT_SYN 0x02
#define TCP_BIT_RST 0x04
#define TCP_BIT_ACK 0x10

static __always_inline __u32 mono_seconds(void)
{
	return (__u32)(bpf_ktime_get_ns() / 1000000000ULL);
}
