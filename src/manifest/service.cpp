// Validation of Service manifests.
#include "manifest/service.h"

#include <arpa/inet.h>

#include <cctype>
#include <set>

#include "manifest/validation.h"

namespace pilus::manifest {

std::optional<std::string> dns_1035_label_error(std::string_view s) {
  if (s.empty() || s.size() > 63) return fmt::format("\"{}\" must be 1 to 63 characters long", s);
  if (!std::islower(static_cast<unsigned char>(s.front())))
    return fmt::format("\"{}\" must start with a lowercase letter (RFC 1035 label)", s);
  for (char c : s)
    if (!std::islower(static_cast<unsigned char>(c)) && !std::isdigit(static_cast<unsigned char>(c)) && c != '-')
      return fmt::format("\"{}\" may contain only lowercase letters, digits and '-' (RFC 1035 label)", s);
  if (s.back() == '-') return fmt::format("\"{}\" must end with a letter or digit (RFC 1035 label)", s);
  return std::nullopt;
}

namespace {

std::optional<std::string> ipv4_error(std::string_view s) {
  in_addr a{};
  if (inet_pton(AF_INET, std::string(s).c_str(), &a) != 1) return fmt::format("\"{}\" is not an IPv4 address", s);
  return std::nullopt;
}

ServicePort read_port(const Value& v) {
  return v.object([&](ObjectReader& r) {
    ServicePort p;
    // A service port's name is a DNS label (kubectl names them "80-80"); a container port's
    // name, which targetPort may give, is an IANA service name.
    if (auto name = r.optional("name")) p.name = name->string(dns_label_error);
    if (auto protocol = r.optional("protocol")) {
      p.protocol = protocol->one_of({"TCP", "UDP", "SCTP"});
      if (p.protocol == "SCTP") protocol->fail("SCTP is not supported by pilus (use TCP or UDP)");
    }
    p.port = static_cast<uint16_t>(r.required("port").integer(1, 65535));
    p.target_port = p.port;
    if (auto target = r.optional("targetPort")) {
      if (target->json().is_string()) {
        p.target_port_name = target->string(port_name_error);
        p.target_port = 0;
      } else {
        p.target_port = static_cast<uint16_t>(target->integer(1, 65535));
      }
    }
    if (auto node_port = r.optional("nodePort")) node_port->fail("only type ClusterIP is supported: no nodePort");
    if (auto app = r.optional("appProtocol")) {
      app->string();
      app->warn("ignored: pilus picks no protocol handling from it (L7 rules come from policies)");
    }
    return p;
  });
}

}  // namespace

Service parse_service(const Document& d) {
  return read_document(d, [&](ObjectReader& root) {
    Service svc;
    Metadata meta = read_metadata(root, Scope::kNamespaced, dns_1035_label_error);
    svc.name = std::move(meta.name);
    svc.ns = std::move(meta.ns);
    svc.labels = std::move(meta.labels);
    svc.annotations = std::move(meta.annotations);

    root.required("spec").object([&](ObjectReader& spec) {
      if (auto type = spec.optional("type")) {
        std::string t = type->one_of({"ClusterIP", "NodePort", "LoadBalancer", "ExternalName"});
        if (t != "ClusterIP") type->fail("type {} is not supported by pilus (only ClusterIP)", t);
      }
      if (auto ip = spec.optional("clusterIP")) {
        if (ip->json().is_string() && ip->json().get<std::string>() == "None")
          ip->fail("headless services (clusterIP: None) are not supported by pilus");
        svc.cluster_ip = ip->string(ipv4_error);
      }
      if (auto ips = spec.optional("clusterIPs")) {
        auto list = ips->string_list(ipv4_error);
        if (list.size() > 1) ips->fail("only one cluster IP (IPv4) is supported");
        if (!list.empty()) {
          if (!svc.cluster_ip.empty() && list.front() != svc.cluster_ip)
            ips->fail("\"{}\" must equal spec.clusterIP \"{}\"", list.front(), svc.cluster_ip);
          svc.cluster_ip = list.front();
        }
      }
      if (auto families = spec.optional("ipFamilies")) {
        for (const Value& f : families->list())
          if (f.one_of({"IPv4", "IPv6"}) != "IPv4") f.fail("IPv6 services are not supported by pilus yet");
      }
      if (auto policy = spec.optional("ipFamilyPolicy")) policy->one_of({"SingleStack"});
      Value ports = spec.required("ports");
      std::vector<Value> items = ports.list();
      if (items.empty()) ports.fail("must have at least one port");
      std::map<std::string, std::string> names;
      std::map<std::pair<uint16_t, std::string>, std::string> seen;
      for (const Value& item : items) {
        ServicePort p = read_port(item);
        if (items.size() > 1 && p.name.empty())
          fail_field(item.where(), field_path(item.path(), "name"), "is required when a service has several ports");
        if (!p.name.empty()) {
          auto [it, added] = names.emplace(p.name, item.path());
          if (!added) item.fail("duplicate port name \"{}\" (also at {})", p.name, it->second);
        }
        auto [it, added] = seen.emplace(std::pair(p.port, p.protocol), item.path());
        if (!added) item.fail("duplicate port {}/{} (also at {})", p.port, p.protocol, it->second);
        svc.ports.push_back(std::move(p));
      }
      if (auto selector = spec.optional("selector")) svc.selector = selector->labels();
      if (auto affinity = spec.optional("sessionAffinity"))
        svc.client_ip_affinity = affinity->one_of({"None", "ClientIP"}) == "ClientIP";
      if (auto config = spec.optional("sessionAffinityConfig")) {
        if (!svc.client_ip_affinity && !config->is_empty_structure())
          config->warn("ignored: it applies only with sessionAffinity: ClientIP");
        config->object([&](ObjectReader& c) {
          if (auto client = c.optional("clientIP")) {
            client->object([&](ObjectReader& ci) {
              if (auto t = ci.optional("timeoutSeconds"))
                svc.affinity_timeout_s = static_cast<uint32_t>(t->integer(1, 86400));
            });
          }
        });
      }
    });
    return svc;
  });
}

}  // namespace pilus::manifest
