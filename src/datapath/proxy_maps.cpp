#include "datapath/proxy_maps.h"

#include <arpa/inet.h>

namespace pilus::datapath {

std::optional<proxy_origin> ProxyMaps::origin(endpoint::Ipv4 client, uint16_t client_port, uint16_t proxy_port) const {
  return origin_.lookup(proxy_origin_key{client.network_order(), htons(client_port), htons(proxy_port)});
}

}  // namespace pilus::datapath
