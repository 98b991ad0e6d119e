// The kernel side of services: writes (VIP, port, proto) -> service,
// backends and each service's Maglev row into the LB maps the socket and
// TC programs share, and reads them back for `pilus bpf lb list`.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/v1/bpf_maps.h"
#include "datapath/datapath.h"
#include "service/backend_selection.h"

namespace pilus::service {

// One (VIP, port, protocol) of a service, with the backends it has now.
struct Frontend {
  std::string service;    // namespace/name
  std::string port_name;  // "" for an unnamed port
  endpoint::Ipv4 vip;
  uint16_t port = 0;
  uint8_t proto = 0;  // IPPROTO_TCP or IPPROTO_UDP
  bool client_ip_affinity = false;
  uint32_t affinity_timeout_s = 0;
  std::vector<Backend> backends;
};

class ServiceMaps {
 public:
  // Adopts the service and backend ids already in the (pinned) maps, so a
  // restarted agent rewrites rows in place with the same content.
  explicit ServiceMaps(const datapath::Datapath& datapath);

  // Makes the maps hold exactly `frontends`. New slots are written before the
  // service entry that points at them; a backend that left every service but
  // whose pod still lives (its address in live_pod_ips) stays as terminating,
  // so established per-packet connections to it go on; otherwise it is deleted.
  // Returns how many Maglev rows were rewritten.
  size_t sync(const std::vector<Frontend>& frontends, const std::set<uint32_t>& live_pod_ips);

  // The maps as the datapath sees them: every service key, its backends with
  // state and the number of Maglev slots each owns.
  std::vector<api::v1::LbService> list() const;

  uint32_t maglev_size() const { return maglev_size_; }

 private:
  using Key = std::tuple<uint32_t, uint16_t, uint8_t>;  // vip, port (network order), proto

  uint32_t backend_id(const std::string& name);

  datapath::LbServicesMap services_;
  datapath::LbBackendsMap backends_;
  datapath::LbMaglevMap maglev_;
  uint32_t maglev_size_;
  uint32_t max_services_;
  std::map<Key, uint32_t> service_ids_;
  std::map<Key, std::string> service_names_;
  std::map<std::string, uint32_t> backend_ids_;             // "ip:port/proto" -> id
  std::map<uint32_t, std::vector<uint32_t>> written_rows_;  // service id -> backend ids in its row
  std::map<Key, std::vector<uint32_t>> members_;            // active backend ids, sorted
  std::map<Key, std::set<uint32_t>> leaving_;               // backends that left the service
};

}  // namespace pilus::service
