/* Records the datapath writes to the events ring buffer. */
#pragma once
#include <linux/types.h>

#define EVENTS_RING_BYTES (1 << 22)

enum event_type {
	EVENT_DROP = 1,
	EVENT_TRACE = 2,
	EVENT_POLICY_VERDICT = 3,
};

enum trace_point {
	TRACE_TO_ENDPOINT = 1, /* delivered towards a pod */
	TRACE_TO_HOST = 2,     /* handed to the node's stack */
	TRACE_FROM_ENDPOINT = 3, /* left a pod towards another pod (its egress stage) */
};

struct flow_event {
	__u64 timestamp_ns; /* bpf_ktime_get_ns (monotonic) */
	__u8 type;          /* enum event_type */
	__u8 reason;        /* drop: enum drop_reason; trace: enum trace_point */
	__u8 dir;           /* enum metric_dir */
	__u8 proto;
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u32 src_identity;
	__u32 dst_identity;
	__u16 endpoint_id;
	__u8 tcp_flags;
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 is_reply;
	__u8 policy_match_type; /* policy verdicts and policy drops: enum policy_match_type */
	__u8 pad;
	__u32 ifindex;
	__u32 length; /* bytes on the wire */
	/* policy drops and verdicts: the policy entry's rule_id (POLICY_DENY, allows), or
	 * the endpoint's default-deny reference (POLICY_DENIED); 0 when unknown */
	__u32 policy_ref;
	__u32 pad2;
};
