/* Service load balancing: (VIP, port, protocol) -> service -> Maglev table ->
 * backend. Shared by the socket programs (sock_lb.bpf.c) and the per-packet
 * fallback in the pod programs (pod.bpf.c); both read the same pinned maps. */
#pragma once
#include <linux/types.h>

#define LB_SERVICES_MAX 1024 /* default of --lb-max-services: (VIP, port, proto) entries, rows of lb_maglev */
#define LB_BACKENDS_MAX 65536
#define LB_MAGLEV_SIZE_DEFAULT 1021 /* prime, slots per service (Cilium: 16381) */
#define LB_AFFINITY_MAX 65536
#define LB_NAT_MAX 65536
#define LB_SOCK_REVNAT_MAX 65536

struct lb_service_key {
	__u32 vip;  /* network order */
	__u16 port; /* network order */
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;
};

enum lb_service_flags {
	LB_SVC_F_AFFINITY = 1 << 0, /* sessionAffinity: ClientIP */
};

struct lb_service {
	__u32 service_id;       /* 1..max services - 1, row of lb_maglev: slots [id * size, (id + 1) * size) */
	__u16 backend_count;    /* active backends; 0: refuse new connections */
	__u16 flags;            /* enum lb_service_flags */
	__u32 affinity_timeout; /* seconds */
	__u32 pad;
};

enum lb_backend_state {
	LB_BACKEND_ACTIVE = 0,
	LB_BACKEND_TERMINATING = 1, /* no new connections; established ones go on */
};

struct lb_backend {
	__u32 ip;   /* network order */
	__u16 port; /* network order */
	__u8 proto;
	__u8 state; /* enum lb_backend_state */
};

/* ClientIP affinity: the client (its address on the TC path, its network
 * namespace cookie on the socket path) keeps its backend per service. */
struct lb_affinity_key {
	__u64 client;
	__u32 service_id;
	__u32 pad;
};

struct lb_affinity_value {
	__u32 backend_id;
	__u32 last_used; /* monotonic seconds */
};

/* Per-packet path: the client's tuple towards the VIP, and the backend chosen
 * for it. Replies are found by the reverse key (backend -> client). */
struct lb_nat_key {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct lb_nat_value {
	__u32 addr; /* forward entry: the backend; reverse entry: the VIP */
	__u16 port;
	__u16 pad;
	__u32 backend_id; /* forward entry: checked against lb_backends on use */
	__u32 last_used;  /* forward entry of a UDP flow: monotonic seconds of its last datagram */
};

/* Socket path: what a connected (or sendmsg'd) socket really talks to, so
 * recvmsg and getpeername show the VIP to the application. */
struct lb_sock_revnat_key {
	__u64 cookie;
	__u32 backend_ip;
	__u16 backend_port;
	__u16 pad;
};

struct lb_sock_revnat_value {
	__u32 vip;
	__u16 vport;
	__u16 pad;
};
