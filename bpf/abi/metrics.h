/* Per-CPU packet and byte counters per endpoint, direction and reason. */
#pragma once
#include <linux/types.h>

#define METRICS_MAX 16384

enum metric_dir {
	METRIC_INGRESS = 1, /* towards the pod */
	METRIC_EGRESS = 2,  /* from the pod */
};

struct metrics_key {
	__u16 endpoint_id; /* 0 when the endpoint is unknown */
	__u8 reason;       /* 0: forwarded; else enum drop_reason */
	__u8 dir;          /* enum metric_dir */
};

struct metrics_value {
	__u64 packets;
	__u64 bytes;
};
