// The agent's side of the proxy maps: it writes proxy_config (where the L7 proxy listens; the
// datapath redirects only once it is set) and reads proxy_origin (a redirected connection's
// original destination). proxy_flows and proxy_origin entries are the datapath's to write.
#pragma once

#include <cstdint>
#include <optional>

#include "datapath/datapath.h"
#include "endpoint/ipv4.h"

namespace pilus::datapath {

class ProxyMaps {
 public:
  explicit ProxyMaps(const Datapath& datapath) : config_(datapath.proxy_config()), origin_(datapath.proxy_origin()) {}

  void set_proxy_address(endpoint::Ipv4 ip) const { config_.update(0, proxy_config{ip.network_order(), 0}); }
  // Ports in host order.
  std::optional<proxy_origin> origin(endpoint::Ipv4 client, uint16_t client_port, uint16_t proxy_port) const;

 private:
  ProxyConfigMap config_;
  ProxyOriginMap origin_;
};

}  // namespace pilus::datapath
