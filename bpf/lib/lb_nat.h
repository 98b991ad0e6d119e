/* Per-packet service translation, for sockets the socket programs did not
 * see (processes outside pilus's cgroup, e.g. `ip netns exec`).
 *
 * API:
 *   lb_dnat_to_backend(skb, ctx)  from_pod, before the peer is looked up:
 *       a packet to a service VIP gets the backend's address and port (the
 *       same backend for the whole connection); ctx->pkt follows, so policy
 *       and conntrack then see the backend, as in Cilium.
 *       -> 0, or -DROP_SERVICE_BACKEND_NOT_FOUND / -DROP_CT_MAP_INSERTION_FAILED
 *   lb_revnat_to_client(skb, ctx) to_pod, once the packet is allowed: a reply
 *       from a backend to a translated client gets the VIP back as source.
 *   return lb_refuse(skb, ctx, reason) for a failed lb_dnat_to_backend: counted
 *       and reported as a drop; a TCP SYN to a service without backend also
 *       gets a RST back at once, and a UDP datagram an ICMP port unreachable,
 *       so the client is refused, not left waiting.
 *
 * lb_nat holds two entries per connection:
 *   (client, VIP)     -> backend  (forward)
 *   (backend, client) -> VIP      (reverse)
 * Entries outlive their connection (LRU). A TCP SYN straight to a backend
 * removes the reverse entry on its ports, so a client reusing a port at once
 * (after a RST) does not see that connection's replies come from the VIP; a
 * SYN to the VIP writes it again. */
#pragma once

#include <linux/tcp.h>
#include <linux/udp.h>

#include "lib/common.h"
#include "lib/drop.h"
#include "lib/lb.h"
#include "lib/reject.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LB_NAT_MAX);
	__type(key, struct lb_nat_key);
	__type(value, struct lb_nat_value);
} lb_nat SEC(".maps");

#define LB_IP_OFF ETH_HLEN
#define LB_IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))
#define LB_SADDR_OFF (ETH_HLEN + offsetof(struct iphdr, saddr))
#define LB_DADDR_OFF (ETH_HLEN + offsetof(struct iphdr, daddr))

/* Rewrites one address and the port beside it (source or destination),
 * fixing the IP checksum and the L4 one (which covers the pseudo-header). */
static __always_inline int lb_rewrite(struct __sk_buff *skb, __u8 proto, int dest, __u32 old_ip, __u32 new_ip,
				      __u16 old_port, __u16 new_port)
{
	__u8 vihl;

	if (bpf_skb_load_bytes(skb, LB_IP_OFF, &vihl, 1) < 0)
		return -1;
	__u32 l4 = ETH_HLEN + (vihl & 0xf) * 4;
	__u32 csum_off = l4 + (proto == IPPROTO_TCP ? offsetof(struct tcphdr, check) : offsetof(struct udphdr, check));
	__u32 port_off = l4 + (dest ? offsetof(struct tcphdr, dest) : offsetof(struct tcphdr, source));
	__u64 l4_flags = proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;

	if (bpf_l4_csum_replace(skb, csum_off, old_ip, new_ip, BPF_F_PSEUDO_HDR | l4_flags | 4) < 0 ||
	    bpf_l3_csum_replace(skb, LB_IP_CSUM_OFF, old_ip, new_ip, 4) < 0 ||
	    bpf_skb_store_bytes(skb, dest ? LB_DADDR_OFF : LB_SADDR_OFF, &new_ip, 4, 0) < 0)
		return -1;
	if (old_port != new_port &&
	    (bpf_l4_csum_replace(skb, csum_off, old_port, new_port, l4_flags | 2) < 0 ||
	     bpf_skb_store_bytes(skb, port_off, &new_port, 2, 0) < 0))
		return -1;
	return 0;
}

/* A TCP SYN straight to an address (not a VIP) opens a new connection. A reverse
 * entry an earlier translated connection left on the same ports (clients reuse a
 * port at once after a RST) would turn this one's replies into the VIP's, and the
 * client would drop them; so it goes. */
static __always_inline int lb_is_tcp_syn(const struct packet *pkt)
{
	return pkt->proto == IPPROTO_TCP && (pkt->tcp_flags & (TCP_BIT_SYN | TCP_BIT_ACK)) == TCP_BIT_SYN;
}

static __always_inline void lb_forget_stale_revnat(const struct packet *pkt)
{
	if (!lb_is_tcp_syn(pkt))
		return;
	struct lb_nat_key rev = {
		.saddr = pkt->daddr, .daddr = pkt->saddr,
		.sport = pkt->dport, .dport = pkt->sport, .proto = pkt->proto,
	};
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
	if (!fresh) {
		target = *known;
	} else {
		__u32 backend_id = 0;
		b = lb_select_backend(svc, lb_hash(pkt->saddr, pkt->daddr, ((__u32)pkt->sport << 16) | pkt->dport),
				      pkt->saddr, &backend_id);
		if (!b)
			return -DROP_SERVICE_BACKEND_NOT_FOUND;
		target.addr = b->ip;
		target.port = b->port;
		target.backend_id = backend_id;
	}
	/* The reverse entry on a fresh choice, and again on a SYN that reuses a known
	 * one: a direct connection on these ports may have removed it since. */
	if (fresh || lb_is_tcp_syn(pkt)) {
		struct lb_nat_key rev = {
			.saddr = target.addr, .daddr = pkt->saddr,
			.sport = target.port, .dport = pkt->sport, .proto = pkt->proto,
		};
		struct lb_nat_value vip = { .addr = pkt->daddr, .port = pkt->dport, .backend_id = target.backend_id };
		if (bpf_map_update_elem(&lb_nat, &rev, &vip, BPF_ANY) < 0 ||
		    (fresh && bpf_map_update_elem(&lb_nat, &fwd, &target, BPF_ANY) < 0))
			return -DROP_CT_MAP_INSERTION_FAILED;
	}
	if (lb_rewrite(skb, pkt->proto, 1, pkt->daddr, target.addr, pkt->dport, target.port) < 0)
		return -DROP_CT_TRUNCATED_OR_INVALID_HEADER;
	pkt->daddr = target.addr;
	pkt->dport = target.port;
	return 0;
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
	if (lb_rewrite(skb, pkt->proto, 0, pkt->saddr, vip->addr, pkt->sport, vip->port) == 0) {
		pkt->saddr = vip->addr;
		pkt->sport = vip->port;
	}
}

static __always_inline int lb_refuse(struct __sk_buff *skb, struct pkt_ctx *ctx, __u8 reason)
{
	int verdict = drop_packet(skb, ctx, reason);

	if (reason != DROP_SERVICE_BACKEND_NOT_FOUND)
		return verdict;
	if (ctx->pkt.proto == IPPROTO_TCP && (ctx->pkt.tcp_flags & (TCP_BIT_SYN | TCP_BIT_ACK)) == TCP_BIT_SYN &&
	    tcp_reset_reply(skb) == 0)
		return bpf_redirect(skb->ifindex, 0);
	if (ctx->pkt.proto == IPPROTO_UDP && icmp_port_unreachable_reply(skb) == 0)
		return bpf_redirect(skb->ifindex, 0);
	return verdict;
}
