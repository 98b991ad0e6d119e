#include "service/service_maps.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>

#include <fmt/format.h>

#include "common/error.h"
#include "service/maglev.h"

namespace pilus::service {

namespace {

std::string proto_name(uint8_t proto) { return proto == IPPROTO_UDP ? "UDP" : "TCP"; }

std::string backend_name(uint32_t ip_net, uint16_t port_net, uint8_t proto) {
  return fmt::format("{}:{}/{}", endpoint::to_string(endpoint::Ipv4{ntohl(ip_net)}), ntohs(port_net),
                     proto_name(proto));
}

// Hands out the lowest ids not in use, in increasing order. Ids are only freed after a sync's
// allocations, so the next free id is never below the last one handed out: one pass over the
// ids for a whole sync, not one per new service (10000 new services took minutes that way).
class IdAllocator {
 public:
  template <typename Map>
  IdAllocator(const Map& used, uint32_t limit, const char* what) : limit_(limit), what_(what) {
    for (const auto& [k, id] : used) taken_.insert(id);
  }
  uint32_t next() {
    while (next_ < limit_ && taken_.count(next_)) next_++;
    if (next_ >= limit_) fail("no {} id left (at most {})", what_, limit_ - 1);
    taken_.insert(next_);
    return next_++;
  }

 private:
  std::set<uint32_t> taken_;
  uint32_t next_ = 1, limit_;
  const char* what_;
};

template <typename Map>
uint32_t lowest_free(const Map& used, uint32_t limit, const char* what) {
  return IdAllocator(used, limit, what).next();
}

}  // namespace

ServiceMaps::ServiceMaps(const datapath::Datapath& datapath)
    : services_(datapath.lb_services()),
      backends_(datapath.lb_backends()),
      maglev_(datapath.lb_maglev()),
      maglev_size_(datapath.config().maglev_size),
      max_services_(datapath.lb_max_services()) {
  services_.for_each([&](const lb_service_key& k, const lb_service& v) {
    service_ids_[{k.vip, k.port, k.proto}] = v.service_id;
  });
  backends_.for_each([&](const uint32_t& id, const lb_backend& b) {
    backend_ids_[backend_name(b.ip, b.port, b.proto)] = id;
  });
}

uint32_t ServiceMaps::backend_id(const std::string& name) {
  if (auto it = backend_ids_.find(name); it != backend_ids_.end()) return it->second;
  uint32_t id = lowest_free(backend_ids_, LB_BACKENDS_MAX, "service backend");
  backend_ids_[name] = id;
  return id;
}

size_t ServiceMaps::sync(const std::vector<Frontend>& frontends, const std::set<uint32_t>& live_pod_ips) {
  size_t rewritten = 0;
  std::set<Key> wanted;
  std::set<uint32_t> active_backends;
  IdAllocator service_ids(service_ids_, max_services_, "service port (raise --lb-max-services)");
  for (const Frontend& f : frontends) {
    const uint16_t port_net = htons(f.port);
    const uint32_t key_vip = f.vip.network_order();
    const Key key{key_vip, port_net, f.proto};
    wanted.insert(key);
    uint32_t sid;
    if (auto it = service_ids_.find(key); it != service_ids_.end()) {
      sid = it->second;
    } else {
      sid = service_ids.next();
      service_ids_[key] = sid;
    }
    service_names_[key] = f.service + (f.port_name.empty() ? "" : ":" + f.port_name);

    std::vector<MaglevBackend> members;
    for (const Backend& b : f.backends) {
      std::string name = backend_name(b.ip.network_order(), htons(b.port), f.proto);
      uint32_t id = backend_id(name);
      backends_.update(id, lb_backend{b.ip.network_order(), htons(b.port), f.proto, LB_BACKEND_ACTIVE});
      active_backends.insert(id);
      members.push_back({name, id});
    }
    std::vector<uint32_t> ids;
    for (const auto& m : members) ids.push_back(m.id);
    std::sort(ids.begin(), ids.end());
    if (auto it = written_rows_.find(sid); it == written_rows_.end() || it->second != ids) {
      std::vector<uint32_t> table = maglev_table(members, maglev_size_);
      std::vector<uint32_t> slots(table.size());
      for (uint32_t slot = 0; slot < table.size(); slot++) slots[slot] = sid * maglev_size_ + slot;
      maglev_.update_batch(slots, table);
      written_rows_[sid] = ids;
      rewritten++;
    }
    lb_service value{};
    value.service_id = sid;
    value.backend_count = static_cast<uint16_t>(f.backends.size());
    value.flags = f.client_ip_affinity ? LB_SVC_F_AFFINITY : 0;
    value.affinity_timeout = f.affinity_timeout_s;
    services_.update(lb_service_key{key_vip, port_net, f.proto, 0}, value);
    // Backends that just left this service: shown as terminating while they last.
    auto& leaving = leaving_[key];
    for (uint32_t id : members_[key])
      if (!std::binary_search(ids.begin(), ids.end(), id)) leaving.insert(id);
    for (uint32_t id : ids) leaving.erase(id);
    members_[key] = ids;
  }

  for (auto it = service_ids_.begin(); it != service_ids_.end();) {
    if (wanted.count(it->first)) {
      ++it;
      continue;
    }
    const auto& [vip, port, proto] = it->first;
    services_.erase(lb_service_key{vip, port, proto, 0});
    written_rows_.erase(it->second);
    service_names_.erase(it->first);
    members_.erase(it->first);
    leaving_.erase(it->first);
    it = service_ids_.erase(it);
  }
  for (auto it = backend_ids_.begin(); it != backend_ids_.end();) {
    uint32_t id = it->second;
    if (active_backends.count(id)) {
      ++it;
      continue;
    }
    auto b = backends_.lookup(id);
    if (b && live_pod_ips.count(b->ip)) {
      if (b->state != LB_BACKEND_TERMINATING) {
        b->state = LB_BACKEND_TERMINATING;
        backends_.update(id, *b);
      }
      ++it;
      continue;
    }
    backends_.erase(id);
    it = backend_ids_.erase(it);
  }
  return rewritten;
}

std::vector<api::v1::LbService> ServiceMaps::list() const {
  std::vector<api::v1::LbService> out;
  services_.for_each([&](const lb_service_key& k, const lb_service& v) {
    std::map<uint32_t, size_t> slots;
    for (uint32_t slot = 0; slot < maglev_size_ && v.backend_count; slot++)
      if (auto id = maglev_.lookup(v.service_id * maglev_size_ + slot)) slots[*id]++;
    std::vector<api::v1::LbBackend> backends;
    auto backend = [&](uint32_t id, const lb_backend& b, size_t count) {
      backends.push_back({id, endpoint::to_string(endpoint::Ipv4{ntohl(b.ip)}), ntohs(b.port),
                          b.state == LB_BACKEND_ACTIVE ? "active" : "terminating", count});
    };
    for (const auto& [id, count] : slots)
      if (auto b = backends_.lookup(id)) backend(id, *b, count);
    // Backends that left the service own no slot; shown while they last.
    if (auto leaving = leaving_.find({k.vip, k.port, k.proto}); leaving != leaving_.end())
      for (uint32_t id : leaving->second) {
        auto b = backends_.lookup(id);
        if (!b || slots.count(id)) continue;
        backend(id, *b, 0);
      }
    auto name = service_names_.find({k.vip, k.port, k.proto});
    out.push_back({name != service_names_.end() ? name->second : "",
                   endpoint::to_string(endpoint::Ipv4{ntohl(k.vip)}),
                   ntohs(k.port),
                   proto_name(k.proto),
                   v.service_id,
                   v.backend_count,
                   (v.flags & LB_SVC_F_AFFINITY) ? "ClientIP" : "None",
                   maglev_size_,
                   std::move(backends)});
  });
  return out;
}

}  // namespace pilus::service
