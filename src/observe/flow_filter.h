// Flow filters with `hubble observe` semantics, built from ordered flags or from an API query string.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "observe/flow.h"

namespace pilus::observe {

// One command-line filter, without dashes: {"pod", "default/frontend"}; {"not", ""} negates the next.
struct FilterArg {
  std::string flag;
  std::string value;
  bool operator==(const FilterArg&) const = default;
};

// Semantics (Hubble's, reimplemented):
// - Values of the same flag are ORed; different flags are ANDed.
// - Either-side flags (--pod, --namespace, --ip, --label, --port, --identity) match the source or
//   the destination, and several of them stay on the same side: "--pod a --port 80" is "a's own
//   port 80" (a as source with source port 80, or a as destination with destination port 80).
// - --from-X / --to-X match only the source / destination.
// - --not negates the next filter. All negated filters form one exclusion built like the above,
//   so "--not --verdict DROPPED --not --protocol udp" excludes flows that are DROPPED *and* UDP.
// - Hubble's conflicts are errors: --pod/--namespace/--ip cannot be combined with each other nor
//   with --from-/--to- pod, namespace or ip; --label with --from/to-label; --port with
//   --from/to-port; --identity with --from/to-identity.
// Values:
// - pod: "namespace/name-prefix", or "name-prefix" in namespace "default", or "namespace/" for
//   every pod of a namespace. The name is a prefix ("front" matches "frontend-7d9c"), as in Hubble.
//   Addresses that are not pods never match a pod filter.
// - namespace: a namespace name (same as pod "namespace/").
// - label: a selector (see label_selector.h): "k8s:app=web", "app=web,tier!=db", "reserved:world".
// - ip: an address or a CIDR. port: 0..65535 (TCP/UDP flows only). identity: a number or a
//   reserved name (host, world, ...).
// - verdict: FORWARDED DROPPED ERROR AUDIT REDIRECTED TRACED TRANSLATED (any case).
// - protocol: tcp, udp, icmp (= icmpv4), http. type: trace, drop, policy-verdict, l7, or Hubble's
//   numbers, optionally with ":sub-type" (trace:to-endpoint, drop:133).
// - drop-reason (alias drop-reason-desc): a name (POLICY_DENIED) or a number.
// - traffic-direction: ingress, egress. node-name: a glob. tcp-flags: "SYN,ACK" (all set).
// - http-method (any case), http-status ("200", or a prefix "5+"), http-path / http-url (regex,
//   searched anywhere, in the URL's path / in the whole URL).
// - policy: "[namespace/]name" or "Kind/namespace/name": flows whose policy verdict or drop
//   names that policy (allowed_by / denied_by), L7 flows by their policy. No namespace: any.
// - since / until: a duration before now ("5m", "1h30m") or a time (RFC 3339, "YYYY-MM-DDTHH:MM:SS",
//   "YYYY-MM-DD"; UTC unless an offset is given). Bounds are inclusive; they cannot be negated.
class FlowFilter {
 public:
  FlowFilter();  // matches every flow

  // Throws pilus::Error naming the flag on an unknown flag, a bad value, a conflict, or a --not
  // that is doubled or not followed by a filter. Relative times are taken from `now`.
  static FlowFilter parse(const std::vector<FilterArg>& args, TimePoint now = Clock::now());
  // Keys are flag names (dashes or underscores); a key "not-<flag>" is the negated flag, so the
  // decoded query map of the API server loses nothing.
  static FlowFilter from_query(const std::map<std::string, std::vector<std::string>>& query,
                               TimePoint now = Clock::now());
  // A raw query string ("pod=default%2Fa&not&verdict=DROPPED"): percent-decoded, order kept, so a
  // bare "not" negates the next pair; "not-<flag>=v" works as well.
  static FlowFilter from_query_string(std::string_view query, TimePoint now = Clock::now());

  bool matches(const Flow& flow) const;
  bool empty() const;  // no filter at all
  std::optional<TimePoint> since() const;
  std::optional<TimePoint> until() const;

  struct Impl;

 private:
  std::shared_ptr<const Impl> impl_;  // immutable once built, so copies share it
};

// Whether `flag` (without dashes) is a filter flag, "not" included.
bool is_filter_flag(std::string_view flag);

// Pulls the filter flags out of a command line, keeping their order ("--pod x", "--pod=x", "--not");
// everything else is returned in `rest`, in order. Throws pilus::Error when a filter flag lacks
// its value.
struct SplitArgs {
  std::vector<FilterArg> filters;
  std::vector<std::string> rest;
};
SplitArgs split_filter_args(const std::vector<std::string>& argv);

// "pod=default%2Ffrontend&not-verdict=DROPPED": what from_query()/from_query_string() read back.
// Throws pilus::Error on a dangling or doubled --not.
std::string to_query_string(const std::vector<FilterArg>& args);

// GET /flows?...: the filters plus the request's own keys.
//   last=N    the last N matching stored flows (absent: the caller's default)
//   all       every stored flow that matches
//   follow    then stream new flows as they come
struct ObserveRequest {
  FlowFilter filter;
  std::optional<size_t> last;
  std::optional<size_t> first;  // the oldest N stored flows (hubble observe --first); not with follow
  bool all = false;
  bool follow = false;
};
ObserveRequest parse_observe_query(const std::map<std::string, std::vector<std::string>>& query,
                                   TimePoint now = Clock::now());

}  // namespace pilus::observe
