/* Service lookup and backend choice, shared by the socket programs and the
 * per-packet fallback.
 *
 * API:
 *   lb_lookup_service(vip, port, proto) -> struct lb_service * or NULL
 *   lb_select_backend(svc, hash, client, &backend_id) -> struct lb_backend *
 *                     or NULL (no active backend: refuse)
 *   lb_hash(a, b, c) mixes 32-bit words into a well-spread 32-bit hash
 *
 * Choice, in order:
 *   sessionAffinity ClientIP and a live entry for (client, service) -> that backend
 *   lb_random set (random mode)   -> a random Maglev slot
 *   otherwise                     -> Maglev slot hash % lb_maglev_size
 * The Maglev table of a service is a row of lb_maglev written by the agent;
 * it holds only active backends, so a removed or terminating backend gets no
 * new connection as soon as the row is rewritten. */
#pragma once

#include "abi/lb.h"
#include "lib/common.h"

/* Tunable before load (rodata); the agent writes the same values into both
 * programs that share these maps. */
const volatile __u32 lb_maglev_size = LB_MAGLEV_SIZE_DEFAULT;
const volatile __u8 lb_random = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_SERVICES_MAX);
	__type(key, struct lb_service_key);
	__type(value, struct lb_service);
} lb_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_BACKENDS_MAX);
	__type(key, __u32);
	__type(value, struct lb_backend);
} lb_backends SEC(".maps");

/* LB_SERVICES_MAX rows of lb_maglev_size slots; the agent sizes it before load. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LB_SERVICES_MAX * LB_MAGLEV_SIZE_DEFAULT);
	__type(key, __u32);
	__type(value, __u32);
} lb_maglev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LB_AFFINITY_MAX);
	__type(key, struct lb_affinity_key);
	__type(value, struct lb_affinity_value);
} lb_affinity SEC(".maps");

static __always_inline __u32 lb_mix(__u32 h)
{
	/* murmur3's finaliser: every input bit flips each output bit with p ~ 1/2 */
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

static __always_inline __u32 lb_hash(__u32 a, __u32 b, __u32 c)
{
	return lb_mix(lb_mix(lb_mix(a) ^ b) ^ c);
}

static __always_inline struct lb_service *lb_lookup_service(__u32 vip, __u16 port, __u8 proto)
{
	struct lb_service_key key = { .vip = vip, .port = port, .proto = proto };

	return bpf_map_lookup_elem(&lb_services, &key);
}

static __always_inline struct lb_backend *lb_active_backend(__u32 backend_id)
{
	struct lb_backend *b = bpf_map_lookup_elem(&lb_backends, &backend_id);

	return b && b->state == LB_BACKEND_ACTIVE ? b : 0;
}

static __always_inline struct lb_backend *lb_select_backend(const struct lb_service *svc, __u32 hash, __u64 client,
							    __u32 *backend_id)
{
	struct lb_affinity_key akey = { .client = client, .service_id = svc->service_id };
	__u32 now = mono_seconds();
	struct lb_backend *b;

	if (svc->backend_count == 0 || lb_maglev_size == 0)
		return 0;
	if (svc->flags & LB_SVC_F_AFFINITY) {
		struct lb_affinity_value *a = bpf_map_lookup_elem(&lb_affinity, &akey);
		if (a && now - a->last_used <= svc->affinity_timeout && (b = lb_active_backend(a->backend_id))) {
			a->last_used = now;
			*backend_id = a->backend_id;
			return b;
		}
	}

	__u32 slot = (lb_random ? bpf_get_prandom_u32() : hash) % lb_maglev_size;
	__u32 index = svc->service_id * lb_maglev_size + slot;
	__u32 *id = bpf_map_lookup_elem(&lb_maglev, &index);
	if (!id || !(b = lb_active_backend(*id)))
		return 0;
	*backend_id = *id;
	if (svc->flags & LB_SVC_F_AFFINITY) {
		struct lb_affinity_value a = { .backend_id = *id, .last_used = now };
		bpf_map_update_elem(&lb_affinity, &akey, &a, BPF_ANY);
	}
	return b;
}
