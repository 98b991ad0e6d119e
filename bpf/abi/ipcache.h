/* ipcache: IPv4 prefix -> security identity (LPM trie). Unknown is world. */
#pragma once
#include <linux/types.h>

#define IPCACHE_MAX 262144

struct ipcache_key {
	__u32 prefixlen; /* LPM trie: bits of ip4 that matter */
	__u32 ip4;       /* network byte order */
};

enum ipcache_flags {
	IPCACHE_F_LOCAL_POD = 1 << 0, /* a pod on this node */
	IPCACHE_F_HOST = 1 << 1,      /* an address of this node */
};

struct ipcache_value {
	__u32 identity;
	__u32 flags;
};
