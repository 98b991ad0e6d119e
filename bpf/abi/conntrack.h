/* Connection tracking: one entry per connection and per endpoint-side scope.
 *
 * A pod-to-pod connection has two entries: CT_EGRESS (seen leaving the client)
 * and CT_INGRESS (seen entering the server). Both are keyed by the tuple of the
 * packet that opened the connection; a reply finds its entry by the reversed
 * tuple in the opposite scope. */
#pragma once
#include <linux/types.h>

#define CT_MAX_DEFAULT 65536

enum ct_scope {
	CT_EGRESS = 0,  /* opened by the local pod */
	CT_INGRESS = 1, /* opened towards the local pod */
};

struct ct_key {
	__u32 saddr; /* of the packet that opened the connection */
	__u32 daddr;
	__u16 sport; /* ICMP echo: the echo id, in both ports */
	__u16 dport;
	__u8 proto;
	__u8 scope; /* enum ct_scope */
	__u16 pad;
};

enum ct_flags {
	CT_F_SEEN_REPLY = 1 << 0,
	CT_F_CLOSING = 1 << 1, /* FIN or RST seen */
};

struct ct_entry {
	__u64 packets_fwd;
	__u64 bytes_fwd;
	__u64 packets_rev;
	__u64 bytes_rev;
	__u32 expires;      /* monotonic seconds (bpf_ktime_get_ns / 1e9) */
	__u32 created;      /* monotonic seconds */
	__u32 src_identity; /* identity of the opener */
	__u32 dst_identity;
	__u8 tcp_flags_fwd; /* union of TCP flags seen each way */
	__u8 tcp_flags_rev;
	__u16 flags;        /* enum ct_flags */
	/* The policy revision at which this direction's packets were last allowed with
	 * src_identity and dst_identity (0: never; see ct_allow_cached in lib/conntrack.h) */
	__u32 policy_revision;
};

/* Lifetimes, in seconds, as Cilium's defaults. */
#define CT_LIFETIME_TCP 21600
#define CT_LIFETIME_NONTCP 60
#define CT_LIFETIME_SYN 60
#define CT_LIFETIME_CLOSE 10
