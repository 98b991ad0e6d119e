/* ipcache: longest-prefix match of an IPv4 address to its security identity.
 *
 * API:
 *   ipcache_lookup(ip4) -> struct ipcache_value * or NULL (world)
 *   cidr_identity(ip4)  -> identity of the longest CIDR a policy names that
 *                          holds ip4, or 0. A separate trie, so that a CIDR
 *                          rule matches pods by address (their /32 entries in
 *                          the ipcache would otherwise hide the CIDR). Most
 *                          nodes have no CIDR policy: while policy_cidrs_count
 *                          (written by the agent) is 0, the trie is not
 *                          searched at all, a cheap array read instead. */
#pragma once

#include "abi/ipcache.h"
#include "lib/common.h"

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, IPCACHE_MAX);
	__type(key, struct ipcache_key);
	__type(value, struct ipcache_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} ipcache SEC(".maps");

static __always_inline struct ipcache_value *ipcache_lookup(__u32 ip4)
{
	struct ipcache_key key = { .prefixlen = 32, .ip4 = ip4 };
	return bpf_map_lookup_elem(&ipcache, &key);
}

static __always_inline __u32 ipcache_identity(__u32 ip4)
{
	struct ipcache_value *v = ipcache_lookup(ip4);
	return v ? v->identity : IDENTITY_WORLD;
}

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, IPCACHE_MAX);
	__type(key, struct ipcache_key);
	__type(value, struct ipcache_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} policy_cidrs SEC(".maps");

/* Prefixes in policy_cidrs; the agent raises it before adding and lowers it
 * after removing, so it is never 0 while the trie holds a prefix. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} policy_cidrs_count SEC(".maps");

static __always_inline __u32 cidr_identity(__u32 ip4)
{
	__u32 zero = 0;
	__u32 *prefixes = bpf_map_lookup_elem(&policy_cidrs_count, &zero);
	if (!prefixes || !*prefixes)
		return 0;
	struct ipcache_key key = { .prefixlen = 32, .ip4 = ip4 };
	struct ipcache_value *v = bpf_map_lookup_elem(&policy_cidrs, &key);
	return v ? v->identity : 0;
}
