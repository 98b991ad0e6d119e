#include "controller/service_plan.h"

#include "common/error.h"
#include "manifest/service.h"

namespace pilus::controller {

void plan_services(const Objects& objects, const std::map<std::string, endpoint::Ipv4>& existing,
                   const endpoint::Ipam& vips, const std::set<std::string>& known_namespaces) {
  std::map<uint32_t, std::string> claimed;  // VIPs asked for in this apply
  size_t new_vips = 0;
  for (const auto& [doc, obj] : objects) {
    const auto* svc = std::get_if<manifest::Service>(&obj);
    if (!svc) continue;
    if (!known_namespaces.count(svc->ns))
      fail("{}: metadata.namespace: namespace \"{}\" not found; apply a Namespace manifest first (or in the same file)",
           doc.describe(), svc->ns);
    auto it = existing.find(svc->ns + "/" + svc->name);
    if (it != existing.end()) {
      if (!svc->cluster_ip.empty() && endpoint::parse_ipv4(svc->cluster_ip) != it->second)
        fail("{}: spec.clusterIP: a service's cluster IP cannot change (it is {}); delete the service first",
             doc.describe(), endpoint::to_string(it->second));
      continue;
    }
    if (svc->cluster_ip.empty()) {
      new_vips++;
      continue;
    }
    endpoint::Ipv4 ip = endpoint::parse_ipv4(svc->cluster_ip);
    // The CIDR's first two addresses and its last are never handed out (as the VIP allocator does).
    const uint32_t first = vips.router_ip().value + 1, last = vips.router_ip().value + uint32_t(vips.capacity());
    if (!vips.contains(ip) || ip.value < first || ip.value > last)
      fail("{}: spec.clusterIP: {} is not a usable address of the service CIDR {}", doc.describe(), svc->cluster_ip,
           vips.cidr());
    if (vips.is_allocated(ip))
      fail("{}: spec.clusterIP: {} is already used by another service", doc.describe(), svc->cluster_ip);
    auto [c, added] = claimed.emplace(ip.value, doc.describe());
    if (!added) fail("{}: spec.clusterIP: {} is also asked for by {}", doc.describe(), svc->cluster_ip, c->second);
  }
  if (new_vips + claimed.size() > vips.available())
    fail("service CIDR {} is exhausted: {} new services, {} addresses left", vips.cidr(), new_vips + claimed.size(),
         vips.available());
}

}  // namespace pilus::controller
