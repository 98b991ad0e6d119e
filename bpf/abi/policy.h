/* Policy map: (endpoint, direction, peer identity, protocol, port prefix) ->
 * allow / deny / L7 redirect. One LPM trie for all endpoints; the prefix
 * length makes protocol and port wildcards and port ranges:
 *
 *   prefixlen                         | matches
 *   ----------------------------------|------------------------------
 *   POLICY_PREFIX_ANY_PROTO (64)      | any protocol, any port
 *   POLICY_PREFIX_ANY_PORT (80)       | this protocol, any port
 *   POLICY_PREFIX_ANY_PORT + n        | this protocol, ports sharing the first n bits
 *   POLICY_PREFIX_FULL (96)           | this protocol and port
 *
 * Peer identity 0 is "any identity". peer_kind says what `identity` holds:
 *   POLICY_PEER_IDENTITY      a security identity (0: any)
 *   POLICY_PEER_ENDPOINT      a destination endpoint id: egress entries of named
 *                             ports, which resolve per destination pod (two pods
 *                             with one identity may name different ports)
 *   POLICY_PEER_DEFAULT_DENY  identity 0, prefix ANY_PROTO: not a verdict; its
 *                             rule_id names the policies that made the direction
 *                             default deny, for POLICY_DENIED drop events */
#pragma once
#include <linux/types.h>

#define POLICY_MAX_DEFAULT 65536

#define POLICY_PREFIX_ANY_PROTO 64
#define POLICY_PREFIX_ANY_PORT 80
#define POLICY_PREFIX_FULL 96

struct policy_key {
	__u32 prefixlen;
	__u16 endpoint_id; /* always fully matched */
	__u8 direction;    /* enum metric_dir; always fully matched */
	__u8 peer_kind;    /* enum policy_peer_kind; always fully matched */
	__u32 identity;    /* peer; 0 = any; always fully matched */
	__u8 protocol;     /* IPPROTO_* */
	__u8 pad2;
	__u16 dport;       /* network byte order, so prefixes follow the port's bits */
};

enum policy_peer_kind {
	POLICY_PEER_IDENTITY = 0,
	POLICY_PEER_ENDPOINT = 1,
	POLICY_PEER_DEFAULT_DENY = 2,
};

enum policy_entry_flags {
	POLICY_F_DENY = 1 << 0,
};

/* Hubble's PolicyMatchType: which kind of entry allowed or denied a packet. */
enum policy_match_type {
	POLICY_MATCH_NONE = 0,       /* no entry: the direction's default decided */
	POLICY_MATCH_L3_ONLY = 1,    /* this peer, any protocol */
	POLICY_MATCH_L3_L4 = 2,      /* this peer, this port */
	POLICY_MATCH_L4_ONLY = 3,    /* any peer, this port */
	POLICY_MATCH_ALL = 4,        /* any peer, any protocol */
	POLICY_MATCH_L3_PROTO = 5,   /* this peer, this protocol, any port */
	POLICY_MATCH_PROTO_ONLY = 6, /* any peer, this protocol, any port */
};

struct policy_entry {
	__u8 flags;
	__u8 match_type; /* enum policy_match_type of the entry's key, written by the agent */
	__u16 proxy_port; /* L7 redirect, network byte order; 0 = none */
	__u32 rule_id;    /* the agent's stable reference to the rule that made it (0: none),
			   * copied into drop events so a drop names its rule */
};

/* endpoint_info.flags: a direction with a policy is default deny. */
enum endpoint_flags {
	ENDPOINT_F_INGRESS_ENFORCED = 1 << 0,
	ENDPOINT_F_EGRESS_ENFORCED = 1 << 1,
	/* the endpoint has POLICY_PEER_ENDPOINT entries: look the destination up too */
	ENDPOINT_F_EGRESS_PER_PEER = 1 << 2,
};

/* The match type an entry's key stands for (the datapath cannot see which
 * prefix an LPM lookup matched, so the agent stores it in the entry). */
static inline __u8 policy_match_type_of(const struct policy_key *k)
{
	int any_peer = k->identity == 0;

	if (k->prefixlen <= POLICY_PREFIX_ANY_PROTO)
		return any_peer ? POLICY_MATCH_ALL : POLICY_MATCH_L3_ONLY;
	if (k->prefixlen == POLICY_PREFIX_ANY_PORT)
		return any_peer ? POLICY_MATCH_PROTO_ONLY : POLICY_MATCH_L3_PROTO;
	return any_peer ? POLICY_MATCH_L4_ONLY : POLICY_MATCH_L3_L4;
}
