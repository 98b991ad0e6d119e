/* Local endpoints (pods on this node), keyed by their IPv4 address. */
#pragma once
#include <linux/types.h>

#define ENDPOINTS_MAX 4096

/* skb->mark of a packet from_pod judged for its local destination's ingress
 * and could not hand straight into the pod: to_pod lets it through unjudged.
 * The veth clears marks on entering the pod's namespace. */
#define MARK_INGRESS_DONE 0x1d7e0000

struct endpoint_key {
	__u32 ip4; /* network byte order */
};

struct endpoint_info {
	__u32 ifindex;     /* host side of the pod's veth */
	__u32 identity;    /* security identity of the pod */
	__u16 endpoint_id; /* agent's id, keys per-endpoint counters */
	__u16 flags;
	__u8 host_mac[6];  /* host side of the veth */
	__u8 pod_mac[6];   /* eth0 inside the pod */
};
