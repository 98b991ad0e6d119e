// The socket mark of the proxy's connection to the server (abi/proxy.h): it
// names the client, so the server's datapath judges the connection as coming
// from the client rather than from the node, which it would always admit.
#pragma once

#include <cstdint>
#include <optional>

#include "abi/proxy.h"
#include "endpoint/ipv4.h"

namespace pilus::proxy {

// nullopt when the client's address cannot be carried (outside the proxy's /8,
// which a pod CIDR never is): such a connection must not be made at all.
inline std::optional<uint32_t> upstream_mark(endpoint::Ipv4 proxy_ip, endpoint::Ipv4 client_ip) {
  if ((proxy_ip.value & MARK_PROXY_UPSTREAM_MAGIC_MASK) != (client_ip.value & MARK_PROXY_UPSTREAM_MAGIC_MASK))
    return std::nullopt;
  return MARK_PROXY_UPSTREAM_MAGIC | (client_ip.value & MARK_PROXY_UPSTREAM_ADDR_MASK);
}

}  // namespace pilus::proxy
