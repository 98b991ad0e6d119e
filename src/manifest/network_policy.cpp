// Validation of NetworkPolicy manifests and of selectors and CIDRs for all policy kinds.
#include "manifest/network_policy.h"

#include <algorithm>

#include "common/error.h"
#include "identity/labels.h"

namespace pilus::manifest {

namespace {

using policy::Direction;
using policy::LabelSelector;
using policy::PortRule;
using policy::Protocol;
using policy::SelectorOperator;
using policy::SelectorRequirement;

struct SourcedKey {
  std::string source, key;
};

SourcedKey split_selector_key(const Value& at, const std::string& text, SelectorSyntax syntax) {
  SourcedKey out{std::string(syntax == SelectorSyntax::kKubernetes ? identity::kSourceK8s : identity::kSourceAny), text};
  // Label keys cannot contain ':', so in Cilium's syntax the first ':' ends the source.
  size_t colon = text.find(':');
  if (syntax == SelectorSyntax::kCilium && colon != std::string::npos) {
    out.source = text.substr(0, colon);
    out.key = text.substr(colon + 1);
    if (out.source != identity::kSourceK8s && out.source != identity::kSourceAny &&
        out.source != identity::kSourceReserved) {
      at.fail("unknown label source \"{}\" in \"{}\" (use k8s, any or reserved, or no source for any)", out.source,
              text);
    }
  }
  if (auto error = label_key_error(out.key)) at.fail("{}", *error);
  return out;
}

SelectorRequirement read_requirement(const Value& v, SelectorSyntax syntax) {
  return v.object([&](ObjectReader& r) {
    SelectorRequirement req;
    Value key = r.required("key");
    SourcedKey k = split_selector_key(key, key.string(), syntax);
    req.source = std::move(k.source);
    req.key = std::move(k.key);
    Value op = r.required("operator");
    std::string name = op.one_of({"In", "NotIn", "Exists", "DoesNotExist"});
    req.op = name == "In"      ? SelectorOperator::kIn
             : name == "NotIn" ? SelectorOperator::kNotIn
             : name == "Exists" ? SelectorOperator::kExists
                                : SelectorOperator::kDoesNotExist;
    std::optional<Value> values = r.optional("values");
    bool wants_values = req.op == SelectorOperator::kIn || req.op == SelectorOperator::kNotIn;
    if (wants_values) {
      if (!values) r.fail("operator {} needs a non-empty \"values\" list", name);
      req.values = values->string_list(label_value_error);
      if (req.values.empty()) values->fail("must not be empty for operator {}", name);
      std::sort(req.values.begin(), req.values.end());
      req.values.erase(std::unique(req.values.begin(), req.values.end()), req.values.end());
    } else if (values && !values->list().empty()) {
      values->fail("must be absent for operator {} (it tests only the key)", name);
    }
    return req;
  });
}

// SCTP is valid (the conversion warns that pilus carries none: such a port allows nothing).
Protocol read_protocol(const Value& v) {
  std::string p = v.one_of({"TCP", "UDP", "SCTP"});
  return p == "TCP" ? Protocol::kTcp : p == "UDP" ? Protocol::kUdp : Protocol::kSctp;
}

PortRule read_port(const Value& v) {
  return v.object([&](ObjectReader& r) {
    PortRule p;
    p.protocol = Protocol::kTcp;  // the Kubernetes default
    if (auto protocol = r.optional("protocol")) p.protocol = read_protocol(*protocol);
    std::optional<Value> port = r.optional("port");
    if (port && port->json().is_string()) {
      std::string name = port->string();
      // "80" in quotes is a (bad) port name for Kubernetes, not a number: say so.
      if (!name.empty() && std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        port->fail("must be a port number or a port name, got \"{}\" (write {} without quotes)", name, name);
      }
      if (auto error = port_name_error(name)) port->fail("{}", *error);
      p.port_name = std::move(name);
    } else if (port) {
      p.port = static_cast<uint16_t>(port->integer(1, 65535));
    }
    if (auto end = r.optional("endPort")) {
      if (!port) end->fail("needs \"port\" to be set (the first port of the range)");
      if (!p.port_name.empty()) end->fail("cannot be used with a named port (\"{}\")", p.port_name);
      auto last = static_cast<uint16_t>(end->integer(1, 65535));
      if (last < p.port) end->fail("must be at least port {}, got {}", p.port, last);
      if (last != p.port) p.end_port = last;
    }
    return p;
  });
}

NetworkPolicyPeer read_peer(const Value& v) {
  return v.object([&](ObjectReader& r) {
    NetworkPolicyPeer peer;
    if (auto s = r.optional("podSelector")) peer.pod_selector = read_label_selector(*s, SelectorSyntax::kKubernetes);
    if (auto s = r.optional("namespaceSelector")) {
      peer.namespace_selector = read_label_selector(*s, SelectorSyntax::kKubernetes);
    }
    if (auto block = r.optional("ipBlock")) {
      peer.ip_block = block->object([&](ObjectReader& b) {
        return read_cidr_block(b.required("cidr"), b.optional("except"), false);
      });
    }
    // A misspelt field is a better message than "must set one of".
    r.finish();
    if (!peer.pod_selector && !peer.namespace_selector && !peer.ip_block) {
      r.fail("must set podSelector, namespaceSelector or ipBlock");
    }
    if (peer.ip_block && (peer.pod_selector || peer.namespace_selector)) {
      r.fail("ipBlock cannot be combined with podSelector or namespaceSelector in one peer (write separate peers)");
    }
    return peer;
  });
}

NetworkPolicyRule read_rule(const Value& v, std::string_view peers_key) {
  return v.object([&](ObjectReader& r) {
    NetworkPolicyRule rule;
    if (auto peers = r.optional(peers_key)) {
      for (const Value& item : peers->list()) rule.peers.push_back(read_peer(item));
    }
    if (auto ports = r.optional("ports")) {
      for (const Value& item : ports->list()) rule.ports.push_back(read_port(item));
    }
    return rule;
  });
}

std::optional<std::vector<NetworkPolicyRule>> read_section(ObjectReader& spec, std::string_view key,
                                                           std::string_view peers_key) {
  std::optional<Value> section = spec.optional(key);
  if (!section) return std::nullopt;
  std::vector<NetworkPolicyRule> rules;
  for (const Value& item : section->list()) rules.push_back(read_rule(item, peers_key));
  return rules;
}

}  // namespace

LabelSelector read_label_selector(const Value& v, SelectorSyntax syntax) {
  return v.object([&](ObjectReader& r) {
    LabelSelector selector;
    if (auto labels = r.optional("matchLabels")) {
      if (!labels->json().is_object()) labels->fail("must be a map, got {}", describe_value(labels->json()));
      for (const auto& [key, value] : labels->json().items()) {
        Value entry(value, field_path(labels->path(), key), labels->where());
        SourcedKey k = split_selector_key(entry, key, syntax);
        selector.match_labels.push_back({std::move(k.source), std::move(k.key), entry.string(label_value_error)});
      }
    }
    if (auto expressions = r.optional("matchExpressions")) {
      for (const Value& item : expressions->list()) selector.match_expressions.push_back(read_requirement(item, syntax));
    }
    return selector;
  });
}

endpoint::Ipv4Prefix read_ipv4_cidr(const Value& v, bool allow_bare_address) {
  std::string text = v.string();
  if (text.find(':') != std::string::npos) v.fail("IPv6 CIDR \"{}\" is not supported by pilus (IPv4 only)", text);
  endpoint::Ipv4Prefix prefix;
  try {
    prefix = endpoint::parse_ipv4_prefix(text, allow_bare_address);
  } catch (const Error& e) {
    v.fail("{}", e.what());
  }
  // Kubernetes and Cilium silently widen 10.0.0.5/24 to the whole /24; in a security rule
  // that is more likely a typo than the intent, so make the writer choose.
  if (prefix.has_host_bits()) {
    v.fail("\"{}\" has host bits set: write \"{}\" for the network or \"{}/32\" for one address", text,
           endpoint::to_string(prefix.masked()), endpoint::to_string(prefix.address));
  }
  return prefix;
}

policy::CidrPeer read_cidr_block(const Value& cidr, const std::optional<Value>& except, bool allow_bare_address) {
  policy::CidrPeer peer{read_ipv4_cidr(cidr, allow_bare_address), {}};
  if (!except) return peer;
  for (const Value& item : except->list()) {
    endpoint::Ipv4Prefix excluded = read_ipv4_cidr(item, allow_bare_address);
    if (excluded.length <= peer.cidr.length || !peer.cidr.contains(excluded.address)) {
      item.fail("{} is not strictly inside cidr {}", endpoint::to_string(excluded), endpoint::to_string(peer.cidr));
    }
    peer.except.push_back(excluded);
  }
  return peer;
}

void check_subject_namespace(const Value& v, const LabelSelector& selector, const std::string& ns) {
  for (const identity::Label& l : selector.match_labels) {
    bool names_namespace = l.key == identity::kPodNamespaceLabel &&
                           (l.source == identity::kSourceK8s || l.source == identity::kSourceAny);
    if (names_namespace && l.value != ns) {
      v.fail("selects namespace \"{}\", but this policy is in namespace \"{}\" and applies only there (it would select "
             "nothing; use a CiliumClusterwideNetworkPolicy for other namespaces)",
             l.value, ns);
    }
  }
}

NetworkPolicy parse_network_policy(const Document& d) {
  return read_document(d, [&](ObjectReader& root) {
    NetworkPolicy np;
    Metadata meta = read_metadata(root, Scope::kNamespaced, dns_subdomain_error);
    np.name = std::move(meta.name);
    np.ns = std::move(meta.ns);
    np.labels = std::move(meta.labels);
    np.annotations = std::move(meta.annotations);
    root.required("spec").object([&](ObjectReader& spec) {
      // Absent means {} (every pod of the namespace), as Kubernetes decodes it.
      if (auto selector = spec.optional("podSelector")) {
        np.pod_selector = read_label_selector(*selector, SelectorSyntax::kKubernetes);
        check_subject_namespace(*selector, np.pod_selector, np.ns);
      }
      if (auto types = spec.optional("policyTypes")) {
        for (const Value& item : types->list()) {
          Direction d = item.one_of({"Ingress", "Egress"}) == "Ingress" ? Direction::kIngress : Direction::kEgress;
          if (std::find(np.policy_types.begin(), np.policy_types.end(), d) != np.policy_types.end()) {
            item.fail("{} is listed twice", item.json().get<std::string>());
          }
          np.policy_types.push_back(d);
        }
      }
      np.ingress = read_section(spec, "ingress", "from");
      np.egress = read_section(spec, "egress", "to");
    });
    return np;
  });
}

}  // namespace pilus::manifest
