// Hubble-style filters: an include and an exclude part, each two per-side filters (fields ANDed, values ORed).
#include "observe/flow_filter.h"

#include "common/percent_encoding.h"

#include <fnmatch.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <regex>

#include "common/error.h"
#include "endpoint/ipv4.h"
#include "observe/flow_time.h"
#include "observe/label_selector.h"

namespace pilus::observe {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

template <typename T>
std::optional<T> parse_number(std::string_view text) {
  T value{};
  if (text.empty()) return std::nullopt;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

struct PodRef {
  std::string ns;
  std::string prefix;  // empty: any pod of the namespace
};

struct TypeMatch {
  int type = 0;  // Hubble's event_type.type
  std::optional<int> sub_type;
};

struct StatusMatch {
  std::string digits;
  bool prefix = false;
};

struct RegexMatch {
  std::string text;
  std::regex re;
};

// --policy: "[namespace/]name", optionally "Kind/namespace/name"; no namespace matches any.
struct PolicyMatch {
  std::string kind, ns, name;
  bool any_namespace = false;

  bool matches(const std::string& k, const std::string& n, const std::string& nm) const {
    return name == nm && (any_namespace || ns == n) && (kind.empty() || iequals(kind, k));
  }
};

bool policy_matches(const PolicyMatch& m, const Flow& f) {
  for (const FlowPolicy& p : f.policies)
    if (m.matches(p.kind, p.namespace_name, p.name)) return true;
  if (f.policies.empty() && f.policy_name) {
    size_t slash = f.policy_name->find('/');
    std::string ns = slash == std::string::npos ? "" : f.policy_name->substr(0, slash);
    std::string name = slash == std::string::npos ? *f.policy_name : f.policy_name->substr(slash + 1);
    return m.matches("", ns, name) && m.kind.empty();
  }
  return false;
}

// One of Hubble's FlowFilters: each non-empty field must match, by any of its values.
struct Side {
  std::vector<PodRef> source_pod, destination_pod;
  std::vector<endpoint::Ipv4Prefix> source_ip, destination_ip;
  std::vector<LabelSelector> source_label, destination_label;
  std::vector<uint16_t> source_port, destination_port;
  std::vector<uint32_t> source_identity, destination_identity;
  std::vector<Verdict> verdict;
  std::vector<std::string> protocol;
  std::vector<TypeMatch> type;
  std::vector<uint8_t> drop_reason;
  std::vector<TrafficDirection> direction;
  std::vector<std::string> node_name;
  std::vector<TcpFlags> tcp_flags;
  std::vector<std::string> http_method;
  std::vector<StatusMatch> http_status;
  std::vector<RegexMatch> http_path, http_url;
  std::vector<PolicyMatch> policy;

  bool matches(const Flow& f) const;
};

template <typename T, typename Pred>
bool field_ok(const std::vector<T>& values, Pred&& pred) {
  return values.empty() || std::any_of(values.begin(), values.end(), pred);
}

bool pod_matches(const PodRef& ref, const FlowEndpoint& ep) {
  return !ep.pod_name.empty() && ep.namespace_name == ref.ns && ep.pod_name.compare(0, ref.prefix.size(), ref.prefix) == 0;
}

bool has_ports(const Flow& f) { return f.l4.protocol == L4Protocol::Tcp || f.l4.protocol == L4Protocol::Udp; }

std::string url_path(const std::string& url) {
  size_t start = 0;
  if (size_t scheme = url.find("://"); scheme != std::string::npos) {
    start = url.find('/', scheme + 3);
    if (start == std::string::npos) return "/";
  }
  size_t end = url.find_first_of("?#", start);
  return url.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

bool Side::matches(const Flow& f) const {
  const FlowEndpoint& src = f.source;
  const FlowEndpoint& dst = f.destination;
  return field_ok(source_pod, [&](const PodRef& r) { return pod_matches(r, src); }) &&
         field_ok(destination_pod, [&](const PodRef& r) { return pod_matches(r, dst); }) &&
         field_ok(source_ip, [&](const endpoint::Ipv4Prefix& p) { return p.contains(src.ip); }) &&
         field_ok(destination_ip, [&](const endpoint::Ipv4Prefix& p) { return p.contains(dst.ip); }) &&
         field_ok(source_label, [&](const LabelSelector& s) { return s.matches(src.labels); }) &&
         field_ok(destination_label, [&](const LabelSelector& s) { return s.matches(dst.labels); }) &&
         field_ok(source_port, [&](uint16_t p) { return has_ports(f) && src.port == p; }) &&
         field_ok(destination_port, [&](uint16_t p) { return has_ports(f) && dst.port == p; }) &&
         field_ok(source_identity, [&](uint32_t id) { return src.identity == id; }) &&
         field_ok(destination_identity, [&](uint32_t id) { return dst.identity == id; }) &&
         field_ok(verdict, [&](Verdict v) { return f.verdict == v; }) &&
         field_ok(protocol,
                  [&](const std::string& p) {
                    if (p == "tcp") return f.l4.protocol == L4Protocol::Tcp;
                    if (p == "udp") return f.l4.protocol == L4Protocol::Udp;
                    if (p == "icmp" || p == "icmpv4") return f.l4.protocol == L4Protocol::Icmpv4;
                    if (p == "http") return f.http.has_value();
                    return false;
                  }) &&
         field_ok(type,
                  [&](const TypeMatch& t) {
                    return hubble_event_type(f.kind) == t.type &&
                           (!t.sub_type || hubble_event_sub_type(f) == *t.sub_type);
                  }) &&
         field_ok(drop_reason, [&](uint8_t r) { return f.drop_reason != 0 && f.drop_reason == r; }) &&
         field_ok(direction, [&](TrafficDirection d) { return f.direction == d; }) &&
         field_ok(node_name, [&](const std::string& g) { return fnmatch(g.c_str(), f.node_name.c_str(), 0) == 0; }) &&
         field_ok(tcp_flags,
                  [&](const TcpFlags& t) { return f.l4.protocol == L4Protocol::Tcp && f.l4.tcp_flags.contains(t); }) &&
         field_ok(http_method, [&](const std::string& m) { return f.http && iequals(f.http->method, m); }) &&
         field_ok(http_status,
                  [&](const StatusMatch& s) {
                    if (!f.http || f.http->code == 0) return false;
                    std::string code = std::to_string(f.http->code);
                    return s.prefix ? code.compare(0, s.digits.size(), s.digits) == 0 : code == s.digits;
                  }) &&
         field_ok(http_path,
                  [&](const RegexMatch& r) { return f.http && std::regex_search(url_path(f.http->url), r.re); }) &&
         field_ok(http_url, [&](const RegexMatch& r) { return f.http && std::regex_search(f.http->url, r.re); }) &&
         field_ok(policy, [&](const PolicyMatch& m) { return policy_matches(m, f); });
}

// Flags given for one part (include or exclude): the filter is `left OR right`.
struct Tracker {
  bool used = false;
  Side left, right;
  std::vector<std::string> changed;

  bool matches(const Flow& f) const { return left.matches(f) || right.matches(f); }
};

enum class Dir { Either, From, To, Neither };

enum class Family {
  Pod, Namespace, Ip, Label, Port, Identity, Verdict, Protocol, Type, DropReason,
  TrafficDirection, NodeName, TcpFlags, HttpMethod, HttpStatus, HttpPath, HttpUrl, Since, Until, Policy,
};

struct FlagSpec {
  std::string_view name;
  Family family;
  Dir dir;
};

constexpr std::array<FlagSpec, 33> kFlags{{
    {"pod", Family::Pod, Dir::Either},
    {"from-pod", Family::Pod, Dir::From},
    {"to-pod", Family::Pod, Dir::To},
    {"namespace", Family::Namespace, Dir::Either},
    {"from-namespace", Family::Namespace, Dir::From},
    {"to-namespace", Family::Namespace, Dir::To},
    {"ip", Family::Ip, Dir::Either},
    {"from-ip", Family::Ip, Dir::From},
    {"to-ip", Family::Ip, Dir::To},
    {"label", Family::Label, Dir::Either},
    {"from-label", Family::Label, Dir::From},
    {"to-label", Family::Label, Dir::To},
    {"port", Family::Port, Dir::Either},
    {"from-port", Family::Port, Dir::From},
    {"to-port", Family::Port, Dir::To},
    {"identity", Family::Identity, Dir::Either},
    {"from-identity", Family::Identity, Dir::From},
    {"to-identity", Family::Identity, Dir::To},
    {"verdict", Family::Verdict, Dir::Neither},
    {"protocol", Family::Protocol, Dir::Neither},
    {"type", Family::Type, Dir::Neither},
    {"drop-reason", Family::DropReason, Dir::Neither},
    {"drop-reason-desc", Family::DropReason, Dir::Neither},
    {"traffic-direction", Family::TrafficDirection, Dir::Neither},
    {"node-name", Family::NodeName, Dir::Neither},
    {"tcp-flags", Family::TcpFlags, Dir::Neither},
    {"http-method", Family::HttpMethod, Dir::Neither},
    {"http-status", Family::HttpStatus, Dir::Neither},
    {"http-path", Family::HttpPath, Dir::Neither},
    {"http-url", Family::HttpUrl, Dir::Neither},
    {"since", Family::Since, Dir::Neither},
    {"until", Family::Until, Dir::Neither},
    {"policy", Family::Policy, Dir::Neither},
}};

// Flags that cannot be given together in one part, as Hubble rejects them.
const std::vector<std::vector<std::string_view>> kConflicts = {
    {"from-ip", "from-namespace", "from-pod", "ip", "namespace", "pod"},
    {"to-ip", "to-namespace", "to-pod", "ip", "namespace", "pod"},
    {"label", "from-label"},
    {"label", "to-label"},
    {"port", "from-port"},
    {"port", "to-port"},
    {"identity", "from-identity"},
    {"identity", "to-identity"},
};

// "--from_pod", "-pod", "From-Pod" -> "from-pod".
std::string normalize_flag(std::string_view flag) {
  while (!flag.empty() && flag.front() == '-') flag.remove_prefix(1);
  std::string out = lower(flag);
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

const FlagSpec* find_flag(std::string_view name) {
  for (const auto& spec : kFlags) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

[[noreturn]] void bad_value(std::string_view flag, std::string_view value, std::string_view why) {
  fail("invalid --{} value '{}': {}", flag, value, why);
}

PolicyMatch parse_policy(std::string_view flag, std::string_view value) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t slash; (slash = value.find('/', start)) != std::string_view::npos; start = slash + 1)
    parts.emplace_back(value.substr(start, slash - start));
  parts.emplace_back(value.substr(start));
  PolicyMatch m;
  if (parts.size() == 1) {
    m.name = parts[0], m.any_namespace = true;
  } else if (parts.size() == 2) {
    m.ns = parts[0], m.name = parts[1];
  } else if (parts.size() == 3) {
    m.kind = parts[0], m.ns = parts[1], m.name = parts[2];
  }
  if (parts.size() > 3 || m.name.empty()) bad_value(flag, value, "expected [namespace/]name or Kind/namespace/name");
  return m;
}

PodRef parse_pod(std::string_view flag, std::string_view value) {
  if (value.empty()) bad_value(flag, value, "expected [namespace/]pod-name");
  size_t slash = value.find('/');
  if (slash == std::string_view::npos) return PodRef{"default", std::string(value)};
  PodRef ref{std::string(value.substr(0, slash)), std::string(value.substr(slash + 1))};
  if (ref.ns.empty() || ref.prefix.find('/') != std::string::npos) bad_value(flag, value, "expected [namespace/]pod-name");
  return ref;
}

endpoint::Ipv4Prefix parse_ip(std::string_view flag, std::string_view value) {
  try {
    return endpoint::parse_ipv4_prefix(value, /*allow_bare_address=*/true).masked();
  } catch (const Error& e) {
    bad_value(flag, value, std::string("expected an IPv4 address or CIDR (") + e.what() + ")");
  }
}

uint16_t parse_port(std::string_view flag, std::string_view value) {
  auto n = parse_number<uint32_t>(value);
  if (!n || *n > 65535) bad_value(flag, value, "expected a port number 0..65535");
  return static_cast<uint16_t>(*n);
}

uint32_t parse_identity(std::string_view flag, std::string_view value) {
  if (auto id = reserved_identity_from_name(value)) return *id;
  if (auto n = parse_number<uint32_t>(value)) return *n;
  bad_value(flag, value, "expected a numeric identity or a reserved name (host, world, unmanaged, health, init, "
                         "remote-node, kube-apiserver, ingress)");
}

uint8_t parse_drop_reason(std::string_view flag, std::string_view value) {
  if (auto n = parse_number<uint32_t>(value)) {
    if (*n >= 1 && *n <= 255) return static_cast<uint8_t>(*n);
  } else if (auto r = drop_reason_from_name(value)) {
    return *r;
  }
  bad_value(flag, value, "expected a drop reason name (e.g. POLICY_DENIED) or number 1..255");
}

TypeMatch parse_type(std::string_view flag, std::string_view value) {
  std::string_view name = value, sub;
  if (size_t colon = value.find(':'); colon != std::string_view::npos) {
    name = value.substr(0, colon);
    sub = value.substr(colon + 1);
  }
  TypeMatch t;
  if (iequals(name, "drop")) {
    t.type = hubble_event_type(EventKind::Drop);
  } else if (iequals(name, "trace")) {
    t.type = hubble_event_type(EventKind::Trace);
  } else if (iequals(name, "policy-verdict")) {
    t.type = hubble_event_type(EventKind::PolicyVerdict);
  } else if (iequals(name, "l7")) {
    t.type = hubble_event_type(EventKind::L7);
  } else if (iequals(name, "capture") || iequals(name, "trace-sock")) {
    // Hubble's other flow types (monitor numbers 3 and 7): pilus's datapath emits neither,
    // so they select nothing, as on a Cilium node without packet captures or socket tracing.
    t.type = iequals(name, "capture") ? 3 : 7;
  } else if (auto n = parse_number<int>(name); n && event_kind_from_hubble(*n) != EventKind::Unknown) {
    t.type = *n;
  } else {
    bad_value(flag, value, "expected trace, drop, policy-verdict, l7, capture or trace-sock, optionally with :sub-type");
  }
  if (value.find(':') != std::string_view::npos) {
    if (t.type == hubble_event_type(EventKind::Trace)) {
      if (auto point = parse_trace_point(sub)) t.sub_type = static_cast<int>(*point);
    } else if (t.type == hubble_event_type(EventKind::Drop)) {
      if (auto r = drop_reason_from_name(sub)) t.sub_type = *r;
    }
    if (!t.sub_type) {
      auto n = parse_number<int>(sub);
      if (!n) bad_value(flag, value, "unknown sub-type '" + std::string(sub) + "'");
      t.sub_type = *n;
    }
  }
  return t;
}

TcpFlags parse_tcp_flags(std::string_view flag, std::string_view value) {
  TcpFlags flags;
  size_t start = 0;
  while (start <= value.size()) {
    size_t comma = value.find(',', start);
    std::string_view name = value.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (iequals(name, "SYN")) flags.syn = true;
    else if (iequals(name, "ACK")) flags.ack = true;
    else if (iequals(name, "FIN")) flags.fin = true;
    else if (iequals(name, "RST")) flags.rst = true;
    else if (iequals(name, "PSH")) flags.psh = true;
    else if (iequals(name, "URG")) flags.urg = true;
    else if (iequals(name, "ECE")) flags.ece = true;
    else if (iequals(name, "CWR")) flags.cwr = true;
    else bad_value(flag, value, "unknown TCP flag '" + std::string(name) + "' (SYN, ACK, FIN, RST, PSH, URG, ECE, CWR)");
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return flags;
}

StatusMatch parse_status(std::string_view flag, std::string_view value) {
  StatusMatch s;
  std::string_view digits = value;
  if (!digits.empty() && digits.back() == '+') {
    s.prefix = true;
    digits.remove_suffix(1);
  }
  bool ok = !digits.empty() && digits.size() <= 3 && digits.front() >= '1' && digits.front() <= '5' &&
            std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
            (s.prefix || digits.size() == 3);
  if (!ok) bad_value(flag, value, "expected a status code (404) or a prefix (5+, 40+)");
  s.digits = std::string(digits);
  return s;
}

RegexMatch parse_regex(std::string_view flag, std::string_view value) {
  try {
    return RegexMatch{std::string(value), std::regex(std::string(value), std::regex::ECMAScript)};
  } catch (const std::regex_error& e) {
    bad_value(flag, value, std::string("bad regular expression: ") + e.what());
  }
}

std::string parse_protocol(std::string_view flag, std::string_view value) {
  std::string p = lower(value);
  if (p == "tcp" || p == "udp" || p == "icmp" || p == "icmpv4" || p == "http") return p;
  bad_value(flag, value, "expected tcp, udp, icmp, icmpv4 or http");
}

std::string parse_node_name(std::string_view flag, std::string_view value) {
  if (value.empty()) bad_value(flag, value, "expected a node name or glob");
  return std::string(value);
}

// Adds a value to the fields the flag's direction selects (Hubble's left/right construction).
template <typename T>
void add_sided(Tracker& t, Dir dir, const T& value, std::vector<T> Side::*src, std::vector<T> Side::*dst) {
  switch (dir) {
    case Dir::Either:
      (t.left.*src).push_back(value);
      (t.right.*dst).push_back(value);
      break;
    case Dir::From:
      (t.left.*src).push_back(value);
      (t.right.*src).push_back(value);
      break;
    case Dir::To:
    case Dir::Neither:
      (t.left.*dst).push_back(value);
      (t.right.*dst).push_back(value);
      break;
  }
}

template <typename T>
void add_both(Tracker& t, const T& value, std::vector<T> Side::*field) {
  (t.left.*field).push_back(value);
  (t.right.*field).push_back(value);
}

}  // namespace

struct FlowFilter::Impl {
  Tracker include, exclude;
  std::optional<TimePoint> since, until;

  void set(bool negated, const std::string& flag, const std::string& value, TimePoint now);
};

void FlowFilter::Impl::set(bool negated, const std::string& flag, const std::string& value, TimePoint now) {
  const FlagSpec* spec = find_flag(flag);
  if (!spec) fail("unknown filter --{}", flag);

  if (spec->family == Family::Since || spec->family == Family::Until) {
    if (negated) fail("--not cannot negate --{}", flag);
    TimePoint t;
    try {
      t = parse_time_arg(value, now);
    } catch (const Error& e) {
      bad_value(flag, value, e.what());
    }
    (spec->family == Family::Since ? since : until) = t;
    return;
  }

  Tracker& t = negated ? exclude : include;
  t.used = true;
  if (std::find(t.changed.begin(), t.changed.end(), flag) == t.changed.end()) t.changed.push_back(flag);
  for (const auto& group : kConflicts) {
    if (std::find(group.begin(), group.end(), flag) == group.end()) continue;
    for (const auto& other : t.changed) {
      if (other != flag && std::find(group.begin(), group.end(), other) != group.end())
        fail("filters --{} and --{} cannot be combined", other, flag);
    }
  }

  switch (spec->family) {
    case Family::Pod: add_sided(t, spec->dir, parse_pod(flag, value), &Side::source_pod, &Side::destination_pod); break;
    case Family::Namespace:
      if (value.empty() || value.find('/') != std::string::npos) bad_value(flag, value, "expected a namespace name");
      add_sided(t, spec->dir, PodRef{value, ""}, &Side::source_pod, &Side::destination_pod);
      break;
    case Family::Ip: add_sided(t, spec->dir, parse_ip(flag, value), &Side::source_ip, &Side::destination_ip); break;
    case Family::Label: {
      LabelSelector sel;
      try {
        sel = LabelSelector::parse(value);
      } catch (const Error& e) {
        bad_value(flag, value, e.what());
      }
      add_sided(t, spec->dir, sel, &Side::source_label, &Side::destination_label);
      break;
    }
    case Family::Port: add_sided(t, spec->dir, parse_port(flag, value), &Side::source_port, &Side::destination_port); break;
    case Family::Identity:
      add_sided(t, spec->dir, parse_identity(flag, value), &Side::source_identity, &Side::destination_identity);
      break;
    case Family::Verdict: {
      Verdict v;
      try {
        v = parse_verdict(value);
      } catch (const Error& e) {
        bad_value(flag, value, e.what());
      }
      add_both(t, v, &Side::verdict);
      break;
    }
    case Family::Protocol: add_both(t, parse_protocol(flag, value), &Side::protocol); break;
    case Family::Type: add_both(t, parse_type(flag, value), &Side::type); break;
    case Family::DropReason: add_both(t, parse_drop_reason(flag, value), &Side::drop_reason); break;
    case Family::TrafficDirection: {
      TrafficDirection d{};
      try {
        d = parse_traffic_direction(value);
      } catch (const Error& e) {
        bad_value(flag, value, e.what());
      }
      if (d == TrafficDirection::Unknown) bad_value(flag, value, "expected ingress or egress");
      add_both(t, d, &Side::direction);
      break;
    }
    case Family::NodeName: add_both(t, parse_node_name(flag, value), &Side::node_name); break;
    case Family::TcpFlags: add_both(t, parse_tcp_flags(flag, value), &Side::tcp_flags); break;
    case Family::HttpMethod:
      if (value.empty()) bad_value(flag, value, "expected an HTTP method");
      add_both(t, value, &Side::http_method);
      break;
    case Family::HttpStatus: add_both(t, parse_status(flag, value), &Side::http_status); break;
    case Family::HttpPath: add_both(t, parse_regex(flag, value), &Side::http_path); break;
    case Family::HttpUrl: add_both(t, parse_regex(flag, value), &Side::http_url); break;
    case Family::Policy: add_both(t, parse_policy(flag, value), &Side::policy); break;
    case Family::Since:
    case Family::Until: break;  // handled above
  }
}

FlowFilter::FlowFilter() : impl_(std::make_shared<Impl>()) {}

FlowFilter FlowFilter::parse(const std::vector<FilterArg>& args, TimePoint now) {
  auto impl = std::make_shared<Impl>();
  bool negate_next = false;
  for (const auto& arg : args) {
    std::string flag = normalize_flag(arg.flag);
    if (flag == "not") {
      if (negate_next) fail("consecutive --not: --not applies to the one filter that follows it");
      negate_next = true;
      continue;
    }
    impl->set(negate_next, flag, arg.value, now);
    negate_next = false;
  }
  if (negate_next) fail("--not must be followed by a filter");
  FlowFilter f;
  f.impl_ = std::move(impl);
  return f;
}

namespace {

// "not-pod" -> {"not", ""}, {"pod", ...}: the negation is part of the key.
void append_query_pair(std::vector<FilterArg>& args, std::string_view key, std::string value) {
  std::string flag = normalize_flag(key);
  if (flag.rfind("not-", 0) == 0 && find_flag(flag.substr(4))) {
    args.push_back({"not", ""});
    flag = flag.substr(4);
  }
  args.push_back({flag, std::move(value)});
}

}  // namespace

FlowFilter FlowFilter::from_query(const std::map<std::string, std::vector<std::string>>& query, TimePoint now) {
  std::vector<FilterArg> args;
  for (const auto& [key, values] : query) {
    if (normalize_flag(key) == "not") fail("a negated query filter is written not-<filter>=value");
    for (const auto& value : values) append_query_pair(args, key, value);
  }
  return parse(args, now);
}

FlowFilter FlowFilter::from_query_string(std::string_view query, TimePoint now) {
  if (!query.empty() && query.front() == '?') query.remove_prefix(1);
  std::vector<FilterArg> args;
  size_t start = 0;
  while (start <= query.size()) {
    size_t amp = query.find('&', start);
    std::string_view pair = query.substr(start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
    if (!pair.empty()) {
      size_t eq = pair.find('=');
      std::string key = percent_decode(pair.substr(0, eq));
      std::string value = eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1));
      if (normalize_flag(key) == "not") {
        args.push_back({"not", ""});
      } else {
        append_query_pair(args, key, std::move(value));
      }
    }
    if (amp == std::string_view::npos) break;
    start = amp + 1;
  }
  return parse(args, now);
}

bool FlowFilter::matches(const Flow& flow) const {
  const Impl& i = *impl_;
  if (i.since && flow.time < *i.since) return false;
  if (i.until && flow.time > *i.until) return false;
  if (i.include.used && !i.include.matches(flow)) return false;
  if (i.exclude.used && i.exclude.matches(flow)) return false;
  return true;
}

bool FlowFilter::empty() const {
  return !impl_->include.used && !impl_->exclude.used && !impl_->since && !impl_->until;
}

std::optional<TimePoint> FlowFilter::since() const { return impl_->since; }
std::optional<TimePoint> FlowFilter::until() const { return impl_->until; }

bool is_filter_flag(std::string_view flag) {
  std::string name = normalize_flag(flag);
  return name == "not" || find_flag(name) != nullptr;
}

SplitArgs split_filter_args(const std::vector<std::string>& argv) {
  SplitArgs out;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& token = argv[i];
    if (token.size() < 3 || token.compare(0, 2, "--") != 0) {
      out.rest.push_back(token);
      continue;
    }
    std::string_view body = std::string_view(token).substr(2);
    size_t eq = body.find('=');
    std::string name(body.substr(0, eq));
    if (!is_filter_flag(name)) {
      out.rest.push_back(token);
      continue;
    }
    if (normalize_flag(name) == "not") {
      if (eq != std::string_view::npos) fail("--not takes no value");
      out.filters.push_back({"not", ""});
      continue;
    }
    if (eq != std::string_view::npos) {
      out.filters.push_back({normalize_flag(name), std::string(body.substr(eq + 1))});
    } else {
      if (i + 1 >= argv.size()) fail("--{} needs a value", name);
      out.filters.push_back({normalize_flag(name), argv[++i]});
    }
  }
  return out;
}

std::string to_query_string(const std::vector<FilterArg>& args) {
  std::string out;
  bool negate_next = false;
  for (const auto& arg : args) {
    std::string flag = normalize_flag(arg.flag);
    if (flag == "not") {
      if (negate_next) fail("consecutive --not: --not applies to the one filter that follows it");
      negate_next = true;
      continue;
    }
    if (!out.empty()) out += '&';
    out += percent_encode((negate_next ? "not-" : "") + flag);
    out += '=';
    out += percent_encode(arg.value);
    negate_next = false;
  }
  if (negate_next) fail("--not must be followed by a filter");
  return out;
}

ObserveRequest parse_observe_query(const std::map<std::string, std::vector<std::string>>& query, TimePoint now) {
  auto flag_value = [](const std::string& key, const std::vector<std::string>& values) {
    const std::string& v = values.empty() ? std::string() : values.back();
    if (v.empty() || v == "1" || iequals(v, "true")) return true;
    if (v == "0" || iequals(v, "false")) return false;
    fail("invalid {} value '{}': expected true or false", key, v);
  };
  ObserveRequest req;
  std::map<std::string, std::vector<std::string>> filters;
  for (const auto& [key, values] : query) {
    std::string name = normalize_flag(key);
    if (name == "last") {
      const std::string& v = values.empty() ? std::string() : values.back();
      auto n = parse_number<size_t>(v);
      if (!n) fail("invalid last value '{}': expected a number of flows", v);
      req.last = *n;
    } else if (name == "first") {
      const std::string& v = values.empty() ? std::string() : values.back();
      auto n = parse_number<size_t>(v);
      if (!n) fail("invalid first value '{}': expected a number of flows", v);
      req.first = *n;
    } else if (name == "all") {
      req.all = flag_value(key, values);
    } else if (name == "follow") {
      req.follow = flag_value(key, values);
    } else {
      filters[key] = values;
    }
  }
  req.filter = FlowFilter::from_query(filters, now);
  if (req.first && (req.last || req.all || req.follow)) fail("first cannot be combined with last, all or follow");
  return req;
}

}  // namespace pilus::observe
