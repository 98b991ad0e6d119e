// Hubble's flow metrics counted from flows: types, verdicts, drop reasons, policy verdicts.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "abi/drop_reasons.h"
#include "abi/policy.h"
#include "observe/flow_metrics.h"

namespace pilus::observe {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

Flow flow(EventKind kind, Verdict verdict, L4Protocol proto = L4Protocol::Tcp) {
  Flow f;
  f.kind = kind;
  f.verdict = verdict;
  f.l4.protocol = proto;
  f.direction = TrafficDirection::Ingress;
  return f;
}

std::string render(const FlowMetrics& m) {
  metrics::PrometheusText t;
  m.render(t);
  return t.text();
}

TEST(FlowMetrics, CountsFlowsByTypeSubtypeAndVerdict) {
  FlowMetrics m;
  Flow trace = flow(EventKind::Trace, Verdict::Forwarded);
  trace.trace_point = TracePoint::ToEndpoint;
  m.observe(trace);
  m.observe(trace);
  Flow to_host = trace;
  to_host.trace_point = TracePoint::ToHost;
  m.observe(to_host);
  std::string text = render(m);
  EXPECT_THAT(text, HasSubstr("hubble_flows_processed_total{type=\"Trace\",subtype=\"to-endpoint\",verdict=\"FORWARDED\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("hubble_flows_processed_total{type=\"Trace\",subtype=\"to-host\",verdict=\"FORWARDED\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE hubble_drop_total counter"));
  EXPECT_THAT(text, Not(HasSubstr("hubble_drop_total{")));
}

TEST(FlowMetrics, DropsByReasonAndProtocolCountDropEventsOnly) {
  FlowMetrics m;
  Flow verdict = flow(EventKind::PolicyVerdict, Verdict::Dropped);
  verdict.drop_reason = DROP_POLICY_DENIED;
  Flow drop = flow(EventKind::Drop, Verdict::Dropped, L4Protocol::Udp);
  drop.drop_reason = DROP_POLICY_DENIED;
  m.observe(verdict);  // the verdict and the drop it causes are one dropped packet
  m.observe(drop);
  Flow sandbox = flow(EventKind::Drop, Verdict::Dropped, L4Protocol::Icmpv4);
  sandbox.drop_reason = DROP_NO_ROUTE_OUTSIDE;
  m.observe(sandbox);
  std::string text = render(m);
  EXPECT_THAT(text, HasSubstr("hubble_drop_total{reason=\"POLICY_DENIED\",protocol=\"UDP\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("hubble_drop_total{reason=\"NO_ROUTE_TO_OUTSIDE\",protocol=\"ICMPv4\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("hubble_flows_processed_total{type=\"Drop\",subtype=\"\",verdict=\"DROPPED\"} 2\n"));
}

TEST(FlowMetrics, PolicyVerdictsByDirectionMatchAndAction) {
  FlowMetrics m;
  Flow allowed = flow(EventKind::PolicyVerdict, Verdict::Forwarded);
  allowed.policy_match_type = POLICY_MATCH_L3_L4;
  Flow denied = flow(EventKind::PolicyVerdict, Verdict::Dropped);
  denied.direction = TrafficDirection::Egress;
  denied.drop_reason = DROP_POLICY_DENIED;
  m.observe(allowed);
  m.observe(allowed);
  m.observe(denied);
  std::string text = render(m);
  EXPECT_THAT(text, HasSubstr("hubble_policy_verdicts_total{direction=\"ingress\",match=\"l3-l4\",action=\"forwarded\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("hubble_policy_verdicts_total{direction=\"egress\",match=\"none\",action=\"dropped\"} 1\n"));
}

}  // namespace
}  // namespace pilus::observe
