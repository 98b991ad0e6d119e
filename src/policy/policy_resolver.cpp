#include "policy/policy_resolver.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "abi/drop_reasons.h"
#include "abi/identity.h"
#include "abi/metrics.h"

namespace pilus::policy {

bool PolicyKeyLess::operator()(const policy_key& a, const policy_key& b) const {
  return std::memcmp(&a, &b, sizeof(policy_key)) < 0;
}

std::string policy_name(const std::string& kind, const std::string& ns, const std::string& name) {
  return kind + " " + (ns.empty() ? name : ns + "/" + name);
}

std::string port_text(const policy_key& k) {
  if (k.prefixlen == POLICY_PREFIX_ANY_PROTO) return "ANY";
  std::string proto = k.protocol == IPPROTO_TCP ? "TCP" : k.protocol == IPPROTO_UDP ? "UDP" : std::to_string(k.protocol);
  int bits = static_cast<int>(k.prefixlen) - POLICY_PREFIX_ANY_PORT;
  if (bits == 0) return "ANY/" + proto;
  uint16_t lo = ntohs(k.dport);
  uint16_t hi = static_cast<uint16_t>(lo | ((1u << (16 - bits)) - 1));
  return (lo == hi ? std::to_string(lo) : std::to_string(lo) + "-" + std::to_string(hi)) + "/" + proto;
}

std::vector<endpoint::Ipv4Prefix> cidr_prefixes(const std::vector<PolicyRule>& rules) {
  std::set<endpoint::Ipv4Prefix> out;
  for (const auto& r : rules)
    for (const auto& p : r.peers)
      if (const auto* c = std::get_if<CidrPeer>(&p)) {
        out.insert(c->cidr);
        for (const auto& e : c->except) out.insert(e);
      }
  return {out.begin(), out.end()};
}

namespace {

uint8_t dir_code(Direction d) { return d == Direction::kIngress ? METRIC_INGRESS : METRIC_EGRESS; }

struct PortKey {
  uint8_t protocol;  // 0: any protocol
  uint16_t port;     // host order
  uint8_t port_bits; // how many leading bits of port matter (0..16)
};

// A port range as the fewest prefix blocks that cover exactly it.
void range_blocks(uint32_t lo, uint32_t hi, uint8_t proto, std::vector<PortKey>& out) {
  while (lo <= hi) {
    uint32_t size = 1;
    int bits = 16;
    while (bits > 0 && (lo & ((size << 1) - 1)) == 0 && lo + (size << 1) - 1 <= hi) {
      size <<= 1;
      bits--;
    }
    out.push_back({proto, static_cast<uint16_t>(lo), static_cast<uint8_t>(bits)});
    lo += size;
  }
}

std::vector<uint8_t> protocols(Protocol p) {
  if (p == Protocol::kTcp) return {IPPROTO_TCP};
  if (p == Protocol::kUdp) return {IPPROTO_UDP};
  if (p == Protocol::kSctp) return {};  // accepted with a warning; pilus carries no SCTP, so it allows nothing
  return {IPPROTO_TCP, IPPROTO_UDP};
}

bool protocol_matches(Protocol p, const std::string& proto) {
  return (p == Protocol::kAny && (proto == "TCP" || proto == "UDP")) || (p == Protocol::kTcp && proto == "TCP") ||
         (p == Protocol::kUdp && proto == "UDP");
}

bool has_named_ports(const PolicyRule& rule) {
  for (const auto& pr : rule.ports)
    if (!pr.port_name.empty()) return true;
  return false;
}

// Port keys of one rule's numbered ports, ranges and "all ports" (named ports excluded).
std::vector<PortKey> numbered_port_keys(const PolicyRule& rule) {
  std::vector<PortKey> out;
  if (rule.ports.empty()) {
    out.push_back({0, 0, 0});
    return out;
  }
  for (const auto& pr : rule.ports) {
    if (!pr.port_name.empty()) continue;
    if (pr.all_ports()) {
      if (pr.protocol == Protocol::kAny)
        out.push_back({0, 0, 0});
      else
        for (uint8_t proto : protocols(pr.protocol)) out.push_back({proto, 0, 0});
      continue;
    }
    uint32_t hi = pr.end_port ? pr.end_port : pr.port;
    for (uint8_t proto : protocols(pr.protocol)) range_blocks(pr.port, hi, proto, out);
  }
  return out;
}

// A rule's named ports as `owner` defines them (its containerPorts of that name and a
// matching protocol); nothing for a pod without the name. Kubernetes' meaning: for
// ingress the owner is the selected pod, for egress each destination pod.
std::vector<PortKey> named_port_keys(const PolicyRule& rule, const EndpointView& owner) {
  std::set<std::pair<uint8_t, uint16_t>> resolved;
  for (const auto& pr : rule.ports) {
    if (pr.port_name.empty()) continue;
    for (const auto& cp : owner.ports)
      if (cp.name == pr.port_name && protocol_matches(pr.protocol, cp.protocol))
        resolved.insert({cp.protocol == "UDP" ? IPPROTO_UDP : IPPROTO_TCP, cp.container_port});
  }
  std::vector<PortKey> out;
  for (const auto& [proto, port] : resolved) out.push_back({proto, port, 16});
  return out;
}

// Whether a local pod is one of the rule's peers (for per-destination named ports).
bool peer_matches(const PolicyRule& rule, const EndpointView& ep) {
  if (rule.all_peers) return true;
  for (const auto& peer : rule.peers) {
    if (const auto* s = std::get_if<SelectorPeer>(&peer)) {
      if (s->selector.matches(ep.labels)) return true;
    } else if (const auto* c = std::get_if<CidrPeer>(&peer)) {
      if (c->contains(ep.ip)) return true;
    } else {
      Entity e = std::get<EntityPeer>(peer).entity;
      if (e == Entity::kAll || e == Entity::kCluster) return true;
    }
  }
  return false;
}

policy_key make_key(uint16_t ep, uint8_t dir, uint32_t identity, const PortKey& pk,
                    uint8_t peer_kind = POLICY_PEER_IDENTITY) {
  policy_key k{};
  k.endpoint_id = ep;
  k.direction = dir;
  k.peer_kind = peer_kind;
  k.identity = identity;
  if (pk.protocol == 0) {
    k.prefixlen = POLICY_PREFIX_ANY_PROTO;
    return k;
  }
  k.protocol = pk.protocol;
  k.prefixlen = POLICY_PREFIX_ANY_PORT + pk.port_bits;
  uint16_t mask = pk.port_bits == 0 ? 0 : static_cast<uint16_t>(0xffff << (16 - pk.port_bits));
  k.dport = htons(pk.port & mask);
  return k;
}

// True when `outer` (same endpoint, direction, identity) matches every packet `inner` matches.
bool covers(const policy_key& outer, const policy_key& inner) {
  if (outer.prefixlen > inner.prefixlen) return false;
  if (outer.prefixlen == POLICY_PREFIX_ANY_PROTO) return true;
  if (outer.protocol != inner.protocol) return false;
  int bits = static_cast<int>(outer.prefixlen) - POLICY_PREFIX_ANY_PORT;
  uint16_t mask = bits == 0 ? 0 : static_cast<uint16_t>(0xffff << (16 - bits));
  return (ntohs(outer.dport) & mask) == (ntohs(inner.dport) & mask);
}

bool same_scope(const policy_key& a, const policy_key& b) {
  return a.endpoint_id == b.endpoint_id && a.direction == b.direction && a.peer_kind == b.peer_kind &&
         a.identity == b.identity;
}

class PeerIdentities {
 public:
  explicit PeerIdentities(const ResolverInput& in) : in_(in) {}

  // Peer identities a rule names; {0} for "any identity".
  std::set<uint32_t> of(const PolicyRule& rule) const {
    std::set<uint32_t> ids;
    if (rule.all_peers) return {0};
    for (const auto& peer : rule.peers) {
      if (const auto* s = std::get_if<SelectorPeer>(&peer)) {
        for (const auto& id : in_.identities)
          if (s->selector.matches(id.labels)) ids.insert(id.id);
      } else if (const auto* c = std::get_if<CidrPeer>(&peer)) {
        add_cidr(*c, ids);
      } else {
        add_entity(std::get<EntityPeer>(peer).entity, ids);
      }
    }
    return ids;
  }

 private:
  // CIDR identities of every prefix inside the rule's CIDR and outside its
  // excepts. Pods and the node match by address through the same identities
  // (the datapath looks the peer's address up in policy_cidrs), so a pod in
  // an except is excluded even when a replica of it is inside.
  void add_cidr(const CidrPeer& c, std::set<uint32_t>& ids) const {
    for (const auto& [prefix, id] : in_.cidr_identities) {
      if (prefix.length < c.cidr.length || !c.cidr.contains(prefix.network())) continue;
      bool excluded = false;
      for (const auto& e : c.except)
        if (prefix.length >= e.length && e.contains(prefix.network())) excluded = true;
      if (!excluded) ids.insert(id);
    }
  }

  void add_entity(Entity e, std::set<uint32_t>& ids) const {
    switch (e) {
      case Entity::kAll: ids.insert(0); break;
      case Entity::kWorld: ids.insert(IDENTITY_WORLD); break;
      case Entity::kHost: ids.insert(IDENTITY_HOST); break;
      case Entity::kRemoteNode: ids.insert(IDENTITY_REMOTE_NODE); break;
      case Entity::kKubeApiserver: ids.insert(IDENTITY_KUBE_APISERVER); break;
      case Entity::kHealth: ids.insert(IDENTITY_HEALTH); break;
      case Entity::kInit: ids.insert(IDENTITY_INIT); break;
      case Entity::kUnmanaged: ids.insert(IDENTITY_UNMANAGED); break;
      case Entity::kIngress: ids.insert(IDENTITY_INGRESS); break;
      case Entity::kCluster:
        for (uint32_t id : {IDENTITY_HOST, IDENTITY_REMOTE_NODE, IDENTITY_HEALTH, IDENTITY_INIT, IDENTITY_INGRESS,
                            IDENTITY_UNMANAGED})
          ids.insert(id);
        for (const auto& id : in_.identities)
          if (id.id >= IDENTITY_FIRST_POD && id.id < IDENTITY_FIRST_LOCAL) ids.insert(id.id);
        break;
    }
  }

  const ResolverInput& in_;
};

// proxy-visibility: what the endpoint's policy allows on a visibility port goes through the
// proxy instead, with an allow-everything HTTP rule, so each request becomes an L7 flow and
// nothing more or less is allowed. Per peer scope, the entry the datapath's longest match
// would find for TCP/port is copied to an exact key that redirects (a deny found there wins
// and is left alone); a direction no policy enforces gets an "any peer" entry.
void add_visibility(const ResolverInput& in, ResolvedPolicy& out) {
  for (const auto& ep : in.endpoints) {
    for (const auto& vis : ep.visibility) {
      uint8_t dir = dir_code(vis.direction);
      uint16_t flag = dir == METRIC_INGRESS ? ENDPOINT_F_INGRESS_ENFORCED : ENDPOINT_F_EGRESS_ENFORCED;
      const policy_key target = make_key(ep.id, dir, 0, PortKey{IPPROTO_TCP, vis.port, 16});
      std::map<std::pair<uint8_t, uint32_t>, const std::pair<const policy_key, ResolvedEntry>*> scopes;
      for (const auto& kv : out.entries) {
        const policy_key& k = kv.first;
        if (k.endpoint_id != ep.id || k.direction != dir || k.peer_kind == POLICY_PEER_DEFAULT_DENY) continue;
        policy_key t = target;
        t.peer_kind = k.peer_kind;
        t.identity = k.identity;
        if (!covers(k, t)) continue;
        auto& best = scopes[{k.peer_kind, k.identity}];
        if (!best || k.prefixlen > best->first.prefixlen) best = &kv;
      }
      auto ep_it = out.endpoints.find(ep.id);
      if (ep_it == out.endpoints.end() || !(ep_it->second.flags & flag))
        scopes.try_emplace(std::pair<uint8_t, uint32_t>(POLICY_PEER_IDENTITY, 0), nullptr);
      for (const auto& [scope, covering] : scopes) {
        if (covering && (covering->second.value.flags & POLICY_F_DENY)) continue;
        std::vector<size_t> rules = covering ? covering->second.rules : std::vector<size_t>{};
        uint8_t match = covering ? covering->second.value.match_type : uint8_t(POLICY_MATCH_L4_ONLY);
        policy_key t = target;
        t.peer_kind = scope.first;
        t.identity = scope.second;
        auto [it, added] = out.entries.try_emplace(t);
        ResolvedEntry& e = it->second;
        if ((e.value.flags & POLICY_F_DENY) || e.value.proxy_port) continue;  // denied, or already proxied by L7 rules
        if (added) {
          e.rules = std::move(rules);
          e.value.match_type = match;
        }
        e.rules.push_back(ep.visibility_rule);
        e.value.proxy_port = htons(in.proxy_port);
      }
    }
  }
}

}  // namespace

ResolvedPolicy resolve(const ResolverInput& in) {
  ResolvedPolicy out;
  PeerIdentities peers(in);

  for (const auto& ep : in.endpoints) {
    EndpointPolicy& ep_policy = out.endpoints[ep.id];
    for (const auto& dd : in.default_deny) {
      if (!dd.subject.matches(ep.labels)) continue;
      std::string who = policy_name(dd.policy_kind, dd.policy_namespace, dd.policy_name);
      if (dd.direction == Direction::kIngress) {
        ep_policy.flags |= ENDPOINT_F_INGRESS_ENFORCED;
        ep_policy.ingress_enforced_by.push_back(who);
      } else {
        ep_policy.flags |= ENDPOINT_F_EGRESS_ENFORCED;
        ep_policy.egress_enforced_by.push_back(who);
      }
    }
    for (size_t i = 0; i < in.rules.size(); i++) {
      const PolicyRule& rule = in.rules[i];
      if (rule.visibility_only || !rule.subject.matches(ep.labels)) continue;
      uint8_t dir = dir_code(rule.direction);
      auto add = [&](const policy_key& key) {
        ResolvedEntry& e = out.entries[key];
        bool was_deny = e.value.flags & POLICY_F_DENY;
        if (rule.deny && !was_deny) {
          // A deny takes the key over, and the credit for it.
          e.value.flags |= POLICY_F_DENY;
          e.value.rule_id = static_cast<uint32_t>(i);
          e.rules = {i};
        } else if (rule.deny == was_deny) {
          if (e.rules.empty()) e.value.rule_id = static_cast<uint32_t>(i);
          e.rules.push_back(i);
        }
      };
      auto ports = numbered_port_keys(rule);
      bool named = has_named_ports(rule);
      // Ingress: the selected pod's own named ports, for every peer identity.
      if (named && rule.direction == Direction::kIngress) {
        auto own = named_port_keys(rule, ep);
        ports.insert(ports.end(), own.begin(), own.end());
      }
      if (!ports.empty())
        for (uint32_t identity : peers.of(rule))
          for (const auto& pk : ports) add(make_key(ep.id, dir, identity, pk));
      // Egress: each destination pod's own named ports, keyed by that pod (pods with one
      // identity may name different ports).
      if (named && rule.direction == Direction::kEgress) {
        for (const auto& dst : in.endpoints) {
          if (!peer_matches(rule, dst)) continue;
          for (const auto& pk : named_port_keys(rule, dst))
            add(make_key(ep.id, dir, dst.id, pk, POLICY_PEER_ENDPOINT));
        }
      }
    }
  }

  // Deny wins over allow: an allow that a broader deny of the same peer
  // covers would otherwise win the longest-prefix match.
  std::vector<std::pair<policy_key, const ResolvedEntry*>> denies;
  for (const auto& [k, e] : out.entries)
    if (e.value.flags & POLICY_F_DENY) denies.emplace_back(k, &e);
  for (auto& [k, e] : out.entries) {
    if (e.value.flags & POLICY_F_DENY) continue;
    for (const auto& [dk, de] : denies) {
      if (same_scope(dk, k) && covers(dk, k)) {
        e.value.flags |= POLICY_F_DENY;
        e.value.rule_id = de->value.rule_id;
        e.rules = de->rules;
        break;
      }
    }
  }
  for (auto& [k, e] : out.entries) {
    e.value.match_type = policy_match_type_of(&k);
    if (k.peer_kind != POLICY_PEER_ENDPOINT) continue;
    // Keyed by the destination pod, but a rule without peers is still L4-only.
    bool l4_only = true;
    for (size_t i : e.rules) l4_only = l4_only && in.rules[i].all_peers;
    if (l4_only) e.value.match_type = POLICY_MATCH_L4_ONLY;
    out.endpoints[k.endpoint_id].flags |= ENDPOINT_F_EGRESS_PER_PEER;
  }
  // L7: an allow entry goes through the proxy when every rule behind it has
  // HTTP rules; one plain L4 allow for the same key lets everything through.
  if (in.proxy_port != 0) {
    for (auto& [k, e] : out.entries) {
      if ((e.value.flags & POLICY_F_DENY) || k.protocol != IPPROTO_TCP || e.rules.empty()) continue;
      bool all_http = true;
      for (size_t i : e.rules) all_http = all_http && !in.rules[i].http.empty();
      if (all_http) e.value.proxy_port = htons(in.proxy_port);
    }
    add_visibility(in, out);
  }
  if (in.refs) {
    for (auto& [k, e] : out.entries)
      if (!e.rules.empty()) e.value.rule_id = in.refs->intern({ref_of(in.rules[e.rules.front()])});
    // Default deny: which policies made each direction so, for POLICY_DENIED drop events.
    for (const auto& ep : in.endpoints) {
      for (Direction d : {Direction::kIngress, Direction::kEgress}) {
        std::vector<PolicyRef> causes;
        for (const auto& dd : in.default_deny) {
          if (dd.direction != d || !dd.subject.matches(ep.labels)) continue;
          PolicyRef ref = ref_of(dd);
          if (std::find(causes.begin(), causes.end(), ref) == causes.end()) causes.push_back(std::move(ref));
        }
        if (causes.empty()) continue;
        policy_key k{};
        k.prefixlen = POLICY_PREFIX_ANY_PROTO;
        k.endpoint_id = ep.id;
        k.direction = dir_code(d);
        k.peer_kind = POLICY_PEER_DEFAULT_DENY;
        out.entries[k].value.rule_id = in.refs->intern(causes);
      }
    }
  }
  return out;
}

namespace {

const std::pair<const policy_key, ResolvedEntry>* longest_match(const ResolvedPolicy& r, const policy_key& probe) {
  const std::pair<const policy_key, ResolvedEntry>* best = nullptr;
  for (const auto& kv : r.entries) {
    if (!same_scope(kv.first, probe) || !covers(kv.first, probe)) continue;
    if (!best || kv.first.prefixlen > best->first.prefixlen) best = &kv;
  }
  return best;
}

}  // namespace

Verdict evaluate(const ResolvedPolicy& resolved, uint16_t endpoint_id, uint8_t direction, uint32_t peer_identity,
                 uint8_t protocol, uint16_t port, uint32_t peer_cidr_identity, uint16_t peer_endpoint) {
  policy_key probe{};
  probe.prefixlen = POLICY_PREFIX_FULL;
  probe.endpoint_id = endpoint_id;
  probe.direction = direction;
  probe.identity = peer_identity;
  probe.protocol = protocol;
  probe.dport = protocol == IPPROTO_ICMP ? 0 : htons(port);
  const auto* exact = longest_match(resolved, probe);
  const std::pair<const policy_key, ResolvedEntry>* peer = nullptr;
  if (peer_endpoint && direction == METRIC_EGRESS) {
    probe.peer_kind = POLICY_PEER_ENDPOINT;
    probe.identity = peer_endpoint;
    peer = longest_match(resolved, probe);
    probe.peer_kind = POLICY_PEER_IDENTITY;
  }
  const std::pair<const policy_key, ResolvedEntry>* cidr = nullptr;
  if (peer_cidr_identity) {
    probe.identity = peer_cidr_identity;
    cidr = longest_match(resolved, probe);
  }
  probe.identity = 0;
  const auto* any = longest_match(resolved, probe);
  Verdict v;
  for (const auto* m : {exact, peer, cidr, any}) {
    if (m && (m->second.value.flags & POLICY_F_DENY)) {
      v.allowed = false;
      v.drop_reason = DROP_POLICY_DENY;
      v.entry = &m->second;
      v.key = m->first;
      return v;
    }
  }
  if (const auto* m = exact ? exact : peer ? peer : cidr ? cidr : any) {
    v.entry = &m->second;
    v.key = m->first;
    return v;
  }
  auto it = resolved.endpoints.find(endpoint_id);
  uint16_t flag = direction == METRIC_INGRESS ? ENDPOINT_F_INGRESS_ENFORCED : ENDPOINT_F_EGRESS_ENFORCED;
  if (it != resolved.endpoints.end() && (it->second.flags & flag)) {
    v.allowed = false;
    v.drop_reason = DROP_POLICY_DENIED;
  }
  return v;
}

std::vector<const ResolvedEntry*> matching_entries(const ResolvedPolicy& resolved, uint16_t endpoint_id,
                                                   uint8_t direction, uint32_t peer_identity, uint8_t protocol,
                                                   uint16_t port, uint32_t peer_cidr_identity,
                                                   uint16_t peer_endpoint) {
  policy_key probe{};
  probe.prefixlen = POLICY_PREFIX_FULL;
  probe.endpoint_id = endpoint_id;
  probe.direction = direction;
  probe.protocol = protocol;
  probe.dport = htons(port);
  std::vector<const ResolvedEntry*> out;
  auto add = [&](uint32_t identity) {
    probe.identity = identity;
    if (const auto* m = longest_match(resolved, probe)) out.push_back(&m->second);
  };
  add(peer_identity);
  if (peer_endpoint && direction == METRIC_EGRESS) {
    probe.peer_kind = POLICY_PEER_ENDPOINT;
    add(peer_endpoint);
    probe.peer_kind = POLICY_PEER_IDENTITY;
  }
  if (peer_cidr_identity) add(peer_cidr_identity);
  if (peer_identity) add(0);
  return out;
}

}  // namespace pilus::policy
