/* L7 proxy redirection: connections that a policy entry with a proxy_port
 * covers are DNATed by from_pod to the agent's proxy (the node's address on
 * the pilus host device), and the proxy's replies are reverse-NATed by
 * to_pod, so the client sees the server's address both ways.
 *
 *   map            | key                               | value
 *   ---------------|-----------------------------------|-----------------------------
 *   proxy_config   | 0                                 | the proxy's address
 *   proxy_flows    | client's 4-tuple as it sent it    | proxy port (forward DNAT)
 *   proxy_origin   | client ip+port, proxy port        | original destination (reverse
 *                  |                                   | NAT; the proxy reads it too)
 */
#pragma once
#include <linux/types.h>

#define PROXY_FLOWS_MAX 65536

/* SO_MARK of the proxy's upstream socket: a magic in the top byte and the low
 * 24 bits of the client's address (a local pod: it shares the top byte with
 * the proxy's address, which is in the pod CIDR). to_pod judges a packet from
 * the proxy's address carrying it as if it came from the client, so the
 * server's ingress policy decides on the client, not on the node. The top
 * byte differs from MARK_INGRESS_DONE's (abi/endpoint.h), so the two never
 * collide; pods cannot set either (the veth clears skb->mark on the way out
 * of their namespace, and from_pod refuses sources other than the pod). */
#define MARK_PROXY_UPSTREAM_MAGIC 0xa5000000
#define MARK_PROXY_UPSTREAM_MAGIC_MASK 0xff000000
#define MARK_PROXY_UPSTREAM_ADDR_MASK 0x00ffffff

struct proxy_config {
	__u32 proxy_ip; /* network byte order; 0: no proxy, never redirect */
	__u32 pad;
};

struct proxy_flow_key {
	__u32 saddr; /* client */
	__u32 daddr; /* original server */
	__u16 sport;
	__u16 dport;
	__u32 pad;
};

struct proxy_flow {
	__u16 proxy_port; /* network byte order */
	__u16 pad;
	__u32 pad2;
};

struct proxy_origin_key {
	__u32 client_ip;   /* network byte order */
	__u16 client_port; /* network byte order */
	__u16 proxy_port;  /* network byte order */
};

enum proxy_origin_flags {
	PROXY_F_INGRESS = 1 << 0, /* the server's ingress policy asked for the proxy */
	PROXY_F_EGRESS = 1 << 1,  /* the client's egress policy asked for the proxy */
};

struct proxy_origin {
	__u32 orig_daddr;      /* network byte order */
	__u16 orig_dport;      /* network byte order */
	__u16 flags;           /* enum proxy_origin_flags */
	__u32 src_identity;
	__u32 dst_identity;
	__u16 src_endpoint_id; /* the client pod */
	__u16 dst_endpoint_id; /* the server pod; 0 when not a local pod */
};
