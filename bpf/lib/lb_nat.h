/* Per-packet service translation, for sockets the socket programs did not
 * see (processes outside pilus's cgroup, e.g. `ip netns exec`).
 *
 * API:
 *   lb_dnat_to_backend(skb, ctx)  from_pod, before the peer is looked up:
 *       a packet to a service VIP gets the backend's address and port (the
 *       same backend for the whole connection); ctx->pkt follows, so policy
 *       and conntrack then see the backend, as in Cilium.
 *       -> 0, or -DROP_SERVICE_BACKEND_NOT_FOUND / -DROP_CT_MAP_INSERTION_FAILED /
 *          -DROP_CT_TRUNCATED_OR_INVALID_HEADER
 *   lb_revnat_to_client(skb, ctx) a pod's ingress stage, once the packet is allowed: a reply
 *       from a backend to a translated client gets the VIP back as source.
 *   return lb_refuse(skb, ctx, reason) for a failed lb_dnat_to_backend: counted
 *       and reported as a drop; a TCP SYN to a service without backend also
 *       gets a RST back at once, and a UDP datagram an ICMP port unreachable,
 *       so the client is refused, not left waiting.
 *
 * lb_nat holds two entries per connection:
 *   (client, VIP)     -> backend  (forward)
 *   (backend, client) -> VIP      (reverse)
 * Entries outlive their connection (LRU), so a reverse entry alone does not
 * prove that a reply belongs to a translated flow: the client may since talk
 * to the backend directly on the same ports. A reverse entry is used only
 * while its forward entry still says "this client, this VIP:port -> this
 * backend" and, for UDP (no connection start or end to see), the flow to the
 * VIP sent a datagram within the UDP conntrack lifetime; otherwise it is
 * deleted and the reply passes untouched. A TCP SYN straight to a backend
 * also deletes the reverse entry on its ports: a client reusing a port at
 * once after a RST has a forward entry that is still valid and recent, and
 * only the SYN tells the new direct connection apart. A SYN to the VIP (or a
 * datagram after an idle gap) writes the reverse entry again.
 *
 *   reply from backend to client, reverse entry found | rewritten to the VIP?
 *   --------------------------------------------------|----------------------
 *   forward entry gone                                | no, reverse deleted
 *   forward entry points at another backend           | no, reverse deleted
 *   UDP, no datagram to the VIP for ct_lifetime_nontcp| no, reverse deleted
 *   otherwise                                         | yes */
#pragma once

#include <linux/tcp.h>
#include <linux/udp.h>

#include "lib/common.h"
#include "lib/conntrack.h"
#include "lib/drop.h"
#include "lib/lb.h"
#include "lib/nat_rewrite.h"
#include "lib/reject.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LB_NAT_MAX);
	__type(key, struct lb_nat_key);
	__type(value, struct lb_nat_value);
} lb_nat SEC(".maps");

static __always_inline int lb_is_tcp_syn(const struct packet *pkt)
{
	return pkt->proto == IPPROTO_TCP && (pkt->tcp_flags & (TCP_BIT_SYN | TCP_BIT_ACK)) == TCP_BIT_SYN;
}

/* A UDP flow to a VIP whose forward entry saw no datagram for a conntrack lifetime is over. */
static __always_inline int lb_udp_flow_idle(const struct lb_nat_value *fwd, __u32 now)
{
	return now - fwd->last_used > ct_lifetime_nontcp;
}

/* A TCP SYN straight to an address (not a VIP) opens a direct connection: a
 * reverse entry left on its ports by a translated one goes (see above). */
static __always_inline void lb_forget_stale_revnat(const struct packet *pkt)
{
	if (!lb_is_tcp_syn(pkt))
		return;
	struct lb_nat_key rev = {
		.saddr = pkt->daddr, .daddr = pkt->saddr,
		.sport = pkt->dport, .dport = pkt->sport, .proto = pkt->proto,
	};
	/* A lookup takes no lock; most SYNs find nothing to delete. */
	if (bpf_map_lookup_elem(&lb_nat, &rev))
		bpf_map_delete_elem(&lb_nat, &rev);
}

static __always_inline int lb_dnat_to_backend(struct __sk_buff *skb, struct pkt_ctx *ctx)
{
	struct packet *pkt = &ctx->pkt;

	if (pkt->proto != IPPROTO_TCP && pkt->proto != IPPROTO_UDP)
		return 0;
	struct lb_service *svc = lb_lookup_service(pkt->daddr, pkt->dport, pkt->proto);
	if (!svc) {
		lb_forget_stale_revnat(pkt);
		return 0;
	}

	struct lb_nat_key fwd = {
		.saddr = pkt->saddr, .daddr = pkt->daddr,
		.sport = pkt->sport, .dport = pkt->dport, .proto = pkt->proto,
	};
	struct lb_nat_value *known = bpf_map_lookup_elem(&lb_nat, &fwd);
	struct lb_nat_value target = {};

	/* An established connection keeps its backend while the backend exists,
	 * even terminating; a new one (or a gone backend) gets a fresh choice. */
	struct lb_backend *b = known ? bpf_map_lookup_elem(&lb_backends, &known->backend_id) : 0;
	int fresh = !(b && b->ip == known->addr && b->port == known->port);
	int idle = 0;
	__u32 now = pkt->proto == IPPROTO_UDP ? mono_seconds() : 0;
	if (!fresh) {
		target = *known;
		if (pkt->proto == IPPROTO_UDP) {
			idle = lb_udp_flow_idle(known, now);
			if (known->last_used != now)
				known->last_used = now;
		}
	} else {
		__u32 backend_id = 0;
		b = lb_select_backend(svc, lb_hash(pkt->saddr, pkt->daddr, ((__u32)pkt->sport << 16) | pkt->dport),
				      pkt->saddr, &backend_id);
		if (!b)
			return -DROP_SERVICE_BACKEND_NOT_FOUND;
		target.addr = b->ip;
		target.port = b->port;
		target.backend_id = backend_id;
		target.last_used = now;
	}
	/* The reverse entry on a fresh choice, and again where it may have gone since:
	 * a SYN that reuses a known choice (a direct connection removed it), a datagram
	 * after an idle gap (a reply in the gap found the flow over). */
	if (fresh || idle || lb_is_tcp_syn(pkt)) {
		struct lb_nat_key rev = {
			.saddr = target.addr, .daddr = pkt->saddr,
			.sport = target.port, .dport = pkt->sport, .proto = pkt->proto,
		};
		struct lb_nat_value vip = { .addr = pkt->daddr, .port = pkt->dport, .backend_id = target.backend_id };
		if (bpf_map_update_elem(&lb_nat, &rev, &vip, BPF_ANY) < 0 ||
		    (fresh && bpf_map_update_elem(&lb_nat, &fwd, &target, BPF_ANY) < 0))
			return -DROP_CT_MAP_INSERTION_FAILED;
	}
	return nat_rewrite(skb, pkt, NAT_DEST, target.addr, target.port);
}

static __always_inline void lb_revnat_to_client(struct __sk_buff *skb, struct pkt_ctx *ctx)
{
	struct packet *pkt = &ctx->pkt;

	if (pkt->proto != IPPROTO_TCP && pkt->proto != IPPROTO_UDP)
		return;
	struct lb_nat_key rev = {
		.saddr = pkt->saddr, .daddr = pkt->daddr,
		.sport = pkt->sport, .dport = pkt->dport, .proto = pkt->proto,
	};
	struct lb_nat_value *vip = bpf_map_lookup_elem(&lb_nat, &rev);
	if (!vip)
		return;
	__u32 vip_addr = vip->addr;
	__u16 vip_port = vip->port;
	struct lb_nat_key fwd = {
		.saddr = pkt->daddr, .daddr = vip_addr,
		.sport = pkt->dport, .dport = vip_port, .proto = pkt->proto,
	};
	struct lb_nat_value *chosen = bpf_map_lookup_elem(&lb_nat, &fwd);
	if (!chosen || chosen->addr != pkt->saddr || chosen->port != pkt->sport ||
	    (pkt->proto == IPPROTO_UDP && lb_udp_flow_idle(chosen, mono_seconds()))) {
		bpf_map_delete_elem(&lb_nat, &rev);
		return;
	}
	nat_rewrite(skb, pkt, NAT_SOURCE, vip_addr, vip_port);
}

static __always_inline int lb_refuse(struct __sk_buff *skb, struct pkt_ctx *ctx, __u8 reason)
{
	int verdict = drop_packet(skb, ctx, reason);

	if (reason != DROP_SERVICE_BACKEND_NOT_FOUND)
		return verdict;
	if (lb_is_tcp_syn(&ctx->pkt) && tcp_reset_reply(skb) == 0)
		return bpf_redirect(skb->ifindex, 0);
	if (ctx->pkt.proto == IPPROTO_UDP && icmp_port_unreachable_reply(skb) == 0)
		return bpf_redirect(skb->ifindex, 0);
	return verdict;
}
