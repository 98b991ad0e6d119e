/* Security identities: reserved numbers as in Cilium, pod identities from 256. */
#pragma once

enum pilus_reserved_identity {
	IDENTITY_UNKNOWN = 0,
	IDENTITY_HOST = 1,
	IDENTITY_WORLD = 2,
	IDENTITY_UNMANAGED = 3,
	IDENTITY_HEALTH = 4,
	IDENTITY_INIT = 5,
	IDENTITY_REMOTE_NODE = 6,
	IDENTITY_KUBE_APISERVER = 7,
	IDENTITY_INGRESS = 8,
	IDENTITY_FIRST_POD = 256,
	/* CIDR identities live in a node-local range, as Cilium's (1 << 24). */
	IDENTITY_FIRST_LOCAL = 1 << 24,
};
