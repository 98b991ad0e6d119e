// NetworkPolicy and Cilium policies to normalized rules: namespace scoping, peer-less rules, default deny.
#include "policy/policy_conversion.h"

#include <algorithm>
#include <optional>

#include <fmt/format.h>

#include "identity/labels.h"

namespace pilus::policy {

namespace {

using manifest::CiliumPeerRule;
using manifest::CiliumPolicyCommon;
using manifest::CiliumRule;
using manifest::NetworkPolicy;
using manifest::NetworkPolicyPeer;

const std::string kK8s(identity::kSourceK8s);
const std::string kNamespaceKey(identity::kPodNamespaceLabel);

// The policy a rule comes from, copied into every rule and default-deny record.
struct Owner {
  std::string kind, name, ns;
  LabelSelector subject;

  std::string ref() const { return ns.empty() ? fmt::format("{} {}", kind, name) : fmt::format("{} {}/{}", kind, ns, name); }

  PolicyRule rule(Direction direction, bool deny, int index, std::string path) const {
    PolicyRule r;
    r.policy_kind = kind;
    r.policy_name = name;
    r.policy_namespace = ns;
    r.subject = subject;
    r.direction = direction;
    r.deny = deny;
    r.rule_index = index;
    r.source_path = std::move(path);
    return r;
  }

  DefaultDeny default_deny(Direction direction, std::string reason) const {
    return DefaultDeny{kind, name, ns, subject, direction, std::move(reason)};
  }
};

LabelSelector in_namespace(LabelSelector s, const std::string& ns) {
  s.match_labels.push_back(identity::Label{kK8s, kNamespaceKey, ns});
  return s;
}

// Every pod has a namespace label and nothing else does: "any pod, in any namespace".
SelectorRequirement any_namespace() { return SelectorRequirement{kK8s, kNamespaceKey, SelectorOperator::kExists, {}}; }

std::string_view title(Direction d) { return d == Direction::kIngress ? "Ingress" : "Egress"; }

// ---------------------------------------------------------------- NetworkPolicy

Peer network_policy_peer(const NetworkPolicyPeer& p, const std::string& ns) {
  if (p.ip_block) return *p.ip_block;
  if (!p.namespace_selector) return SelectorPeer{in_namespace(*p.pod_selector, ns)};
  // Pod terms and namespace terms in one selector: both must hold.
  LabelSelector s = p.pod_selector ? *p.pod_selector : LabelSelector{};
  const std::string prefix(identity::kNamespaceLabelPrefix);
  for (const identity::Label& l : p.namespace_selector->match_labels) {
    s.match_labels.push_back(identity::Label{l.source, prefix + l.key, l.value});
  }
  for (SelectorRequirement r : p.namespace_selector->match_expressions) {
    r.key = prefix + r.key;
    s.match_expressions.push_back(std::move(r));
  }
  if (p.namespace_selector->empty()) s.match_expressions.push_back(any_namespace());
  return SelectorPeer{std::move(s)};
}

void convert_network_policy(const NetworkPolicy& np, ConvertedPolicy& out) {
  Owner owner{std::string(NetworkPolicy::kKind), np.name, np.ns, in_namespace(np.pod_selector, np.ns)};
  // Kubernetes' defaulting counts rules, not the section: `egress: []` adds nothing.
  bool defaulted = np.policy_types.empty();
  std::vector<Direction> types = np.policy_types;
  if (defaulted) {
    types.push_back(Direction::kIngress);
    if (np.egress && !np.egress->empty()) types.push_back(Direction::kEgress);
  }
  for (Direction d : {Direction::kIngress, Direction::kEgress}) {
    const auto& section = d == Direction::kIngress ? np.ingress : np.egress;
    std::string_view key = to_string(d);
    if (std::find(types.begin(), types.end(), d) == types.end()) {
      if (section && defaulted) {
        out.notes.push_back(fmt::format(
            "{}: spec.{}: [] has no effect without policyTypes (as in Kubernetes, which adds {} to policyTypes only "
            "when spec.{} has rules); add policyTypes: [Ingress, {}] to deny all {}",
            owner.ref(), key, title(d), key, title(d), key));
      } else if (section) {
        out.notes.push_back(fmt::format("{}: spec.{} is ignored because policyTypes does not list {} (as in Kubernetes)",
                                        owner.ref(), key, title(d)));
      }
      continue;
    }
    std::string reason = !defaulted                     ? fmt::format("policyTypes lists {}", title(d))
                         : d == Direction::kIngress     ? std::string("policyTypes is absent, so it defaults to Ingress")
                                                        : std::string("spec.egress has rules");
    out.default_deny.push_back(owner.default_deny(d, std::move(reason)));
    if (!section) continue;
    for (size_t i = 0; i < section->size(); ++i) {
      const manifest::NetworkPolicyRule& written = (*section)[i];
      PolicyRule rule = owner.rule(d, false, static_cast<int>(i), fmt::format("spec.{}[{}]", key, i));
      for (const NetworkPolicyPeer& p : written.peers) rule.peers.push_back(network_policy_peer(p, np.ns));
      // No from/to at all matches every peer: `ingress: [{}]` allows everything.
      rule.all_peers = rule.peers.empty();
      rule.ports = written.ports;
      out.rules.push_back(std::move(rule));
    }
  }
}

// ---------------------------------------------------------------- Cilium policies

LabelSelector cilium_peer_selector(LabelSelector s, const std::string& ns, bool clusterwide) {
  // Reserved identities (host, world, ...) have no namespace; a selector naming one or
  // naming the namespace itself is left as written.
  if (s.uses_source(identity::kSourceReserved) || s.names_key(kNamespaceKey)) return s;
  if (clusterwide) {
    s.match_expressions.push_back(any_namespace());
    return s;
  }
  // Namespace-label terms select pods in other namespaces on purpose.
  if (s.names_key_prefix(identity::kNamespaceLabelPrefix)) return s;
  return in_namespace(std::move(s), ns);
}

struct Section {
  const std::optional<std::vector<CiliumPeerRule>>& rules;
  std::string_view key;
  Direction direction;
  bool deny;
};

void convert_section(const Owner& owner, const CiliumRule& written, const Section& section, bool clusterwide,
                     ConvertedPolicy& out) {
  if (!section.rules) return;
  for (size_t i = 0; i < section.rules->size(); ++i) {
    const CiliumPeerRule& pr = (*section.rules)[i];
    std::string path = fmt::format("{}.{}[{}]", written.path, section.key, i);
    std::vector<Peer> peers;
    for (const LabelSelector& s : pr.endpoints) peers.push_back(SelectorPeer{cilium_peer_selector(s, owner.ns, clusterwide)});
    for (const CidrPeer& c : pr.cidrs) peers.push_back(c);
    for (Entity e : pr.entities) peers.push_back(EntityPeer{e});
    if (peers.empty() && pr.to_ports.empty()) {
      out.notes.push_back(fmt::format(
          "{}: {} has no peers and no toPorts, so it {} nothing (as in Cilium; in a Kubernetes NetworkPolicy an "
          "empty rule would allow everything)",
          owner.ref(), path, section.deny ? "denies" : "allows"));
      continue;
    }
    if (peers.empty() && !pr.empty_peer_fields.empty()) {
      out.notes.push_back(fmt::format(
          "{}: {}: {}: [] selects no peer and counts as absent (as in Cilium), so the rule applies to every peer on "
          "its ports",
          owner.ref(), path, fmt::join(pr.empty_peer_fields, ": [], ")));
    }
    auto make = [&](std::string rule_path) {
      PolicyRule rule = owner.rule(section.direction, section.deny, static_cast<int>(i), std::move(rule_path));
      rule.peers = peers;
      rule.all_peers = peers.empty();
      return rule;
    };
    if (pr.to_ports.empty()) {
      out.rules.push_back(make(path));
      continue;
    }
    // One rule per toPorts entry, because its HTTP rules apply only to its own ports.
    for (size_t j = 0; j < pr.to_ports.size(); ++j) {
      PolicyRule rule = make(fmt::format("{}.toPorts[{}]", path, j));
      rule.ports = pr.to_ports[j].ports;
      rule.http = pr.to_ports[j].http;
      out.rules.push_back(std::move(rule));
    }
  }
}

bool has_rules(const std::optional<std::vector<CiliumPeerRule>>& section) { return section && !section->empty(); }

void cilium_default_deny(const Owner& owner, const CiliumRule& written, Direction d, ConvertedPolicy& out) {
  bool ingress = d == Direction::kIngress;
  const auto& allow = ingress ? written.ingress : written.egress;
  const auto& deny = ingress ? written.ingress_deny : written.egress_deny;
  std::string_view allow_key = ingress ? "ingress" : "egress";
  std::string_view deny_key = ingress ? "ingressDeny" : "egressDeny";
  std::optional<bool> flag = ingress ? written.default_deny_ingress : written.default_deny_egress;

  // pilus: a present section counts, empty or not; upstream Cilium counts only rules.
  bool enforced = flag.value_or(allow.has_value() || deny.has_value());
  bool upstream = flag.value_or(has_rules(allow) || has_rules(deny));
  if (!enforced) return;
  std::string reason = flag ? fmt::format("{}.enableDefaultDeny.{} is true", written.path, allow_key)
                       : allow ? fmt::format("{}.{} is present", written.path, allow_key)
                               : fmt::format("{}.{} is present", written.path, deny_key);
  out.default_deny.push_back(owner.default_deny(d, std::move(reason)));
  if (!upstream) {
    std::string_view key = allow ? allow_key : deny_key;
    out.notes.push_back(fmt::format(
        "{}: {}.{} is empty, which makes {} default-deny for the selected endpoints in pilus (traffic no policy "
        "allows is dropped); upstream Cilium ignores an empty section and would not enforce it (there, write {}: "
        "[{{}}] for the same effect)",
        owner.ref(), written.path, key, allow_key, key));
  }
}

// Whether a selector names the reserved init identity ("reserved:init").
bool names_init(const LabelSelector& s) {
  for (const auto& l : s.match_labels)
    if (l.source == identity::kSourceReserved && l.key == "init") return true;
  for (const auto& r : s.match_expressions)
    if (r.source == identity::kSourceReserved && r.key == "init") return true;
  return false;
}

// Cilium gives endpoints identity init (5) until their labels are known; pilus knows every
// pod's labels when it creates it, so no endpoint ever has it: say what such a rule means.
void warn_init(const Owner& owner, const CiliumRule& written, ConvertedPolicy& out) {
  if (names_init(written.endpoint_selector))
    out.warnings.push_back(fmt::format(
        "{}: {}.endpointSelector selects reserved:init, the identity of endpoints whose labels are not yet known; "
        "pilus never gives an endpoint that identity, so this rule selects no endpoint",
        owner.ref(), written.path));
  for (const auto* section : {&written.ingress, &written.egress, &written.ingress_deny, &written.egress_deny}) {
    if (!*section) continue;
    for (const CiliumPeerRule& pr : **section)
      for (const LabelSelector& sel : pr.endpoints)
        if (names_init(sel))
          out.warnings.push_back(fmt::format(
              "{}: {}: a peer selects reserved:init (identity 5); pilus never gives an endpoint that identity, so "
              "that peer matches no traffic",
              owner.ref(), written.path));
  }
}

void convert_cilium_policy(const CiliumPolicyCommon& p, std::string_view kind, bool clusterwide, ConvertedPolicy& out) {
  for (const CiliumRule& written : p.rules) {
    Owner owner{std::string(kind), p.name, p.ns,
                clusterwide ? written.endpoint_selector : in_namespace(written.endpoint_selector, p.ns)};
    const Section sections[] = {
        {written.ingress, "ingress", Direction::kIngress, false},
        {written.ingress_deny, "ingressDeny", Direction::kIngress, true},
        {written.egress, "egress", Direction::kEgress, false},
        {written.egress_deny, "egressDeny", Direction::kEgress, true},
    };
    for (const Section& section : sections) convert_section(owner, written, section, clusterwide, out);
    cilium_default_deny(owner, written, Direction::kIngress, out);
    cilium_default_deny(owner, written, Direction::kEgress, out);
    warn_init(owner, written, out);
  }
}

// kubectl-style warnings for ports pilus accepts but cannot carry.
void warn_sctp(const std::string& ref, ConvertedPolicy& out) {
  for (const PolicyRule& r : out.rules) {
    for (size_t j = 0; j < r.ports.size(); ++j) {
      if (r.ports[j].protocol != Protocol::kSctp) continue;
      out.warnings.push_back(fmt::format(
          "{}: {}.ports[{}]: SCTP traffic is not supported by pilus: this port {} nothing (never TCP or UDP)",
          ref, r.source_path, j, r.deny ? "denies" : "allows"));
    }
  }
}

}  // namespace

bool is_policy(const manifest::Object& o) {
  return std::holds_alternative<NetworkPolicy>(o) || std::holds_alternative<manifest::CiliumNetworkPolicy>(o) ||
         std::holds_alternative<manifest::CiliumClusterwideNetworkPolicy>(o);
}

ConvertedPolicy convert_policy(const manifest::Object& o) {
  ConvertedPolicy out;
  if (const auto* np = std::get_if<NetworkPolicy>(&o)) {
    convert_network_policy(*np, out);
    warn_sctp(fmt::format("{} {}/{}", NetworkPolicy::kKind, np->ns, np->name), out);
  } else if (const auto* cnp = std::get_if<manifest::CiliumNetworkPolicy>(&o)) {
    convert_cilium_policy(*cnp, manifest::CiliumNetworkPolicy::kKind, false, out);
    warn_sctp(fmt::format("{} {}/{}", manifest::CiliumNetworkPolicy::kKind, cnp->ns, cnp->name), out);
  } else if (const auto* ccnp = std::get_if<manifest::CiliumClusterwideNetworkPolicy>(&o)) {
    convert_cilium_policy(*ccnp, manifest::CiliumClusterwideNetworkPolicy::kKind, true, out);
    warn_sctp(fmt::format("{} {}", manifest::CiliumClusterwideNetworkPolicy::kKind, ccnp->name), out);
  }
  return out;
}

std::vector<PolicyRule> to_rules(const manifest::Object& o) { return convert_policy(o).rules; }

}  // namespace pilus::policy
