// Every check that can refuse the Services of an apply, before anything changes: namespaces
// exist, a cluster IP never changes, an asked-for cluster IP is a free, usable address of the
// service CIDR and asked for once, and the CIDR has room for the rest. Pure: it reads the
// services there are and the VIP allocator, and changes nothing (unit-tested without root).
#pragma once

#include <map>
#include <set>
#include <string>

#include "controller/objects.h"
#include "endpoint/ipam.h"

namespace pilus::controller {

// existing: the services there are ("namespace/name") with their cluster IPs. Throws
// pilus::Error naming the object and field at the first refusal.
void plan_services(const Objects& objects, const std::map<std::string, endpoint::Ipv4>& existing,
                   const endpoint::Ipam& vips, const std::set<std::string>& known_namespaces);

}  // namespace pilus::controller
