// Validation of CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy manifests.
#include "manifest/cilium_network_policy.h"

#include <re2/re2.h>

#include <algorithm>
#include <cctype>
#include <initializer_list>

#include "manifest/network_policy.h"
#include "manifest/validation.h"

namespace pilus::manifest {

namespace {

using policy::Direction;
using policy::PortRule;
using policy::Protocol;

// Valid Cilium fields pilus does not implement: named so the error says "not supported"
// instead of "unknown field", which would suggest a typo.
void reject_unsupported(ObjectReader& r, std::initializer_list<std::string_view> keys, std::string_view hint = {}) {
  for (std::string_view key : keys) {
    if (auto v = r.optional(key)) {
      if (hint.empty()) v->fail("{} is not supported by pilus", key);
      v->fail("{} is not supported by pilus ({})", key, hint);
    }
  }
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

PortRule read_port(const Value& v) {
  return v.object([&](ObjectReader& r) {
    PortRule p;  // protocol ANY unless written, as in Cilium
    if (auto protocol = r.optional("protocol")) {
      // SCTP is valid (the conversion warns that pilus carries none: such a port allows nothing).
      std::string name = protocol->one_of({"TCP", "UDP", "ANY", "SCTP"});
      p.protocol = name == "TCP"   ? Protocol::kTcp
                   : name == "UDP" ? Protocol::kUdp
                   : name == "SCTP" ? Protocol::kSctp
                                    : Protocol::kAny;
    }
    // A string in the CRD ("80" or a port name); an unquoted 80 is refused by
    // Value::string with a hint to quote it, as the API server would refuse it.
    Value port = r.required("port");
    std::string text = port.string();
    if (all_digits(text)) {
      if (text.size() > 1 && text[0] == '0') port.fail("must not have leading zeros, got \"{}\"", text);
      if (text.size() > 5 || std::stoi(text) < 1 || std::stoi(text) > 65535) {
        port.fail("must be a port number between 1 and 65535 or a port name, got \"{}\"", text);
      }
      p.port = static_cast<uint16_t>(std::stoi(text));
    } else {
      // IANA names are case-insensitive; containerPorts names are lowercase.
      std::string name = text;
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
      if (auto error = port_name_error(name)) port.fail("{}", *error);
      p.port_name = std::move(name);
    }
    if (auto end = r.optional("endPort")) {
      if (!p.port_name.empty()) end->fail("cannot be used with a named port (\"{}\")", p.port_name);
      auto last = static_cast<uint16_t>(end->integer(1, 65535));
      if (last < p.port) end->fail("must be at least port {}, got {}", p.port, last);
      if (last != p.port) p.end_port = last;
    }
    return p;
  });
}

policy::HttpRule read_http(const Value& v) {
  return v.object([&](ObjectReader& r) {
    policy::HttpRule h;
    reject_unsupported(r, {"headerMatches"}, "use headers");
    // The proxy matches with RE2: an expression it cannot compile is refused here, at apply.
    auto regex = [](const Value& field) {
      std::string expr = field.string();
      re2::RE2::Options options;
      options.set_log_errors(false);
      re2::RE2 re(expr, options);
      if (!re.ok()) field.fail("is not a valid regular expression (RE2): {}", re.error());
      return expr;
    };
    if (auto m = r.optional("method")) h.method = regex(*m);
    if (auto p = r.optional("path")) h.path = regex(*p);
    if (auto host = r.optional("host")) h.host = regex(*host);
    if (auto headers = r.optional("headers")) {
      for (const Value& item : headers->list()) {
        std::string header = item.string();
        if (header.empty()) item.fail("must not be empty");
        h.headers.push_back(std::move(header));
      }
    }
    return h;
  });
}

CiliumPortRule read_port_rule(const Value& v, bool deny) {
  return v.object([&](ObjectReader& r) {
    CiliumPortRule rule;
    reject_unsupported(r, {"terminatingTLS", "originatingTLS", "serverNames", "listener"});
    Value ports = r.required("ports");
    std::vector<Value> items = ports.list();
    if (items.empty()) ports.fail("must list at least one port");
    for (const Value& item : items) rule.ports.push_back(read_port(item));
    if (auto rules = r.optional("rules")) {
      // Cilium's deny port rules have no L7 part: a deny drops whole connections.
      if (deny) rules->fail("L7 rules are not allowed in deny rules");
      rules->object([&](ObjectReader& l7) {
        reject_unsupported(l7, {"kafka", "dns", "l7proto", "l7"}, "pilus implements only http rules");
        if (auto http = l7.optional("http")) {
          for (const Value& item : http->list()) rule.http.push_back(read_http(item));
        }
      });
      if (!rule.http.empty()) {
        for (size_t i = 0; i < items.size(); ++i) {
          if (rule.ports[i].protocol != Protocol::kTcp) {
            items[i].fail("HTTP rules apply only to TCP ports: set protocol: TCP (got {})",
                          policy::to_string(rule.ports[i].protocol));
          }
        }
      }
    }
    return rule;
  });
}

CiliumPeerRule read_peer_rule(const Value& v, Direction direction, bool deny) {
  return v.object([&](ObjectReader& r) {
    CiliumPeerRule rule;
    const std::string prefix = direction == Direction::kIngress ? "from" : "to";
    if (direction == Direction::kIngress) {
      reject_unsupported(r, {"fromRequires", "fromGroups", "fromNodes", "icmps", "authentication"});
    } else {
      reject_unsupported(r, {"toRequires", "toGroups", "toNodes", "toServices", "toFQDNs", "icmps", "authentication"});
    }
    // Names of the non-empty peer fields, to refuse mixing kinds as Cilium does.
    std::vector<std::string> kinds;
    auto peer_list = [&](const std::string& key) -> std::vector<Value> {
      std::optional<Value> field = r.optional(key);
      if (!field) return {};
      std::vector<Value> items = field->list();
      if (items.empty()) rule.empty_peer_fields.push_back(key);
      return items;
    };

    const std::string endpoints_key = prefix + "Endpoints";
    for (const Value& item : peer_list(endpoints_key)) {
      rule.endpoints.push_back(read_label_selector(item, SelectorSyntax::kCilium));
    }
    if (!rule.endpoints.empty()) kinds.push_back(endpoints_key);

    // fromCIDR and fromCIDRSet are one kind for pilus: their union is unambiguous.
    const std::string cidr_key = prefix + "CIDR";
    for (const Value& item : peer_list(cidr_key)) rule.cidrs.push_back(policy::CidrPeer{read_ipv4_cidr(item, true), {}});
    for (const Value& item : peer_list(prefix + "CIDRSet")) {
      rule.cidrs.push_back(item.object([&](ObjectReader& set) {
        reject_unsupported(set, {"cidrGroupRef", "cidrGroupSelector"}, "write the cidr");
        return read_cidr_block(set.required("cidr"), set.optional("except"), true);
      }));
    }
    if (!rule.cidrs.empty()) kinds.push_back(cidr_key + "/" + prefix + "CIDRSet");

    const std::string entities_key = prefix + "Entities";
    for (const Value& item : peer_list(entities_key)) {
      std::string name = item.string();
      auto entity = policy::parse_entity(name);
      if (!entity) {
        std::vector<std::string_view> names;
        for (const auto& [e, text] : policy::kEntityNames) names.push_back(text);
        item.fail("unknown entity \"{}\" (supported: {})", name, fmt::join(names, ", "));
      }
      rule.entities.push_back(*entity);
    }
    if (!rule.entities.empty()) kinds.push_back(entities_key);

    if (auto ports = r.optional("toPorts")) {
      for (const Value& item : ports->list()) rule.to_ports.push_back(read_port_rule(item, deny));
    }
    r.finish();
    // Cilium refuses this too; and a reader could take two peer kinds for an AND.
    if (kinds.size() > 1) {
      r.fail("combining {} and {} in one rule is not supported (write them as separate rules)", kinds[0], kinds[1]);
    }
    return rule;
  });
}

std::optional<std::vector<CiliumPeerRule>> read_section(ObjectReader& r, std::string_view key, Direction direction,
                                                        bool deny) {
  std::optional<Value> section = r.optional(key);
  // `egress:` with no value is present and empty, like `egress: []` (Cilium's deny-all
  // examples are written so): pilus makes the direction default deny for both.
  if (!section) {
    if (r.self().json().contains(key)) return std::vector<CiliumPeerRule>{};
    return std::nullopt;
  }
  std::vector<CiliumPeerRule> rules;
  for (const Value& item : section->list()) rules.push_back(read_peer_rule(item, direction, deny));
  return rules;
}

CiliumRule read_rule(const Value& v, Scope scope, const std::string& ns) {
  return v.object([&](ObjectReader& r) {
    CiliumRule rule;
    rule.path = v.path();
    reject_unsupported(r, {"nodeSelector"}, "pilus has no host policies; select pods with endpointSelector");
    Value selector = r.required("endpointSelector");
    rule.endpoint_selector = read_label_selector(selector, SelectorSyntax::kCilium);
    if (scope == Scope::kNamespaced) check_subject_namespace(selector, rule.endpoint_selector, ns);
    if (auto d = r.optional("description")) rule.description = d->string();
    if (auto dd = r.optional("enableDefaultDeny")) {
      dd->object([&](ObjectReader& flags) {
        if (auto in = flags.optional("ingress")) rule.default_deny_ingress = in->boolean();
        if (auto out = flags.optional("egress")) rule.default_deny_egress = out->boolean();
      });
    }
    rule.ingress = read_section(r, "ingress", Direction::kIngress, false);
    rule.egress = read_section(r, "egress", Direction::kEgress, false);
    rule.ingress_deny = read_section(r, "ingressDeny", Direction::kIngress, true);
    rule.egress_deny = read_section(r, "egressDeny", Direction::kEgress, true);
    return rule;
  });
}

CiliumPolicyCommon read_policy(const Document& d, Scope scope) {
  return read_document(d, [&](ObjectReader& root) {
    CiliumPolicyCommon policy;
    Metadata meta = read_metadata(root, scope, dns_subdomain_error);
    policy.name = std::move(meta.name);
    policy.ns = std::move(meta.ns);
    policy.labels = std::move(meta.labels);
    policy.annotations = std::move(meta.annotations);
    std::optional<Value> spec = root.optional("spec");
    std::optional<Value> specs = root.optional("specs");
    if (!spec && !specs) root.fail("missing required field \"spec\" (or \"specs\", a list of rules)");
    if (spec) policy.rules.push_back(read_rule(*spec, scope, policy.ns));
    if (specs) {
      std::vector<Value> items = specs->list();
      if (items.empty()) specs->fail("must list at least one rule");
      for (const Value& item : items) policy.rules.push_back(read_rule(item, scope, policy.ns));
    }
    return policy;
  });
}

}  // namespace

CiliumNetworkPolicy parse_cilium_network_policy(const Document& d) {
  return CiliumNetworkPolicy{read_policy(d, Scope::kNamespaced)};
}

CiliumClusterwideNetworkPolicy parse_cilium_clusterwide_network_policy(const Document& d) {
  return CiliumClusterwideNetworkPolicy{read_policy(d, Scope::kCluster)};
}

}  // namespace pilus::manifest
