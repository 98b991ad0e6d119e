/* Socket-level service load balancing, attached to pilus's pod cgroup:
 *   sock_connect4     cgroup/connect4      connect() to a VIP goes to a backend
 *   sock_sendmsg4     cgroup/sendmsg4      sendto() a VIP (unconnected UDP) too
 *   sock_recvmsg4     cgroup/recvmsg4      replies read as coming from the VIP
 *   sock_getpeername4 cgroup/getpeername4  the peer shows as the VIP
 * The translation happens once per socket, not per packet: the packets leave
 * the pod already addressed to the backend. A VIP with no active backend is
 * refused at once (connect/sendmsg fail with EPERM) and counted as a
 * SERVICE_BACKEND_NOT_FOUND drop. */
#include "lib/common.h"
#include "lib/lb.h"
#include "lib/metrics.h"

char LICENSE[] SEC("license") = "GPL";

#define SOCK_PROCEED 1
#define SOCK_REFUSE 0

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LB_SOCK_REVNAT_MAX);
	__type(key, struct lb_sock_revnat_key);
	__type(value, struct lb_sock_revnat_value);
} lb_sock_revnat SEC(".maps");

static __always_inline int sock_to_backend(struct bpf_sock_addr *ctx)
{
	__u8 proto = ctx->protocol;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return SOCK_PROCEED;
	__u32 vip = ctx->user_ip4;
	__u16 vport = (__u16)ctx->user_port;
	struct lb_service *svc = lb_lookup_service(vip, vport, proto);
	if (!svc)
		return SOCK_PROCEED;

	__u64 cookie = bpf_get_socket_cookie(ctx);
	__u32 backend_id = 0;
	struct lb_backend *b = lb_select_backend(svc, lb_hash((__u32)cookie, (__u32)(cookie >> 32), vip),
						 bpf_get_netns_cookie(ctx), &backend_id);
	if (!b) {
		metrics_count(0, DROP_SERVICE_BACKEND_NOT_FOUND, METRIC_EGRESS, 0);
		return SOCK_REFUSE;
	}
	struct lb_sock_revnat_key key = { .cookie = cookie, .backend_ip = b->ip, .backend_port = b->port };
	struct lb_sock_revnat_value value = { .vip = vip, .vport = vport };
	bpf_map_update_elem(&lb_sock_revnat, &key, &value, BPF_ANY);
	ctx->user_ip4 = b->ip;
	ctx->user_port = b->port;
	return SOCK_PROCEED;
}

static __always_inline int sock_from_backend(struct bpf_sock_addr *ctx)
{
	struct lb_sock_revnat_key key = {
		.cookie = bpf_get_socket_cookie(ctx),
		.backend_ip = ctx->user_ip4,
		.backend_port = (__u16)ctx->user_port,
	};
	struct lb_sock_revnat_value *vip = bpf_map_lookup_elem(&lb_sock_revnat, &key);
	if (vip) {
		ctx->user_ip4 = vip->vip;
		ctx->user_port = vip->vport;
	}
	return SOCK_PROCEED;
}

SEC("cgroup/connect4")
int sock_connect4(struct bpf_sock_addr *ctx)
{
	return sock_to_backend(ctx);
}

SEC("cgroup/sendmsg4")
int sock_sendmsg4(struct bpf_sock_addr *ctx)
{
	return sock_to_backend(ctx);
}

SEC("cgroup/recvmsg4")
int sock_recvmsg4(struct bpf_sock_addr *ctx)
{
	return sock_from_backend(ctx);
}

SEC("cgroup/getpeername4")
int sock_getpeername4(struct bpf_sock_addr *ctx)
{
	return sock_from_backend(ctx);
}
