// hubble observe --time-format: each of Hubble's layouts, and the trace observation point in JSON.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "observe/flow_format.h"
#include "observe/flow_json.h"
#include "observe/flow_time.h"
#include "unit/error_of.h"

namespace pilus::observe {
namespace {

using ::testing::HasSubstr;

TimePoint at(std::string_view rfc3339) { return parse_rfc3339(rfc3339); }

TEST(ObserveTimeFormat, EveryHubbleLayout) {
  const TimePoint t = at("2024-11-04T09:01:02.123456789Z");
  struct Case {
    const char* name;
    const char* text;
  } cases[] = {
      {"StampMilli", "Nov  4 09:01:02.123"},
      {"YearMonthDay", "2024-11-04"},
      {"YearMonthDayHour", "2024-11-04T09Z"},
      {"YearMonthDayHourMinute", "2024-11-04T09:01Z"},
      {"RFC3339", "2024-11-04T09:01:02Z"},
      {"RFC3339Milli", "2024-11-04T09:01:02.123Z"},
      {"RFC3339Micro", "2024-11-04T09:01:02.123456Z"},
      {"RFC3339Nano", "2024-11-04T09:01:02.123456789Z"},
      {"RFC1123Z", "Mon, 04 Nov 2024 09:01:02 +0000"},
  };
  for (const auto& c : cases) EXPECT_EQ(format_time(t, parse_time_format(c.name)), c.text) << c.name;
  EXPECT_EQ(parse_time_format("rfc3339milli"), TimeFormat::RFC3339Milli);
}

TEST(ObserveTimeFormat, NanoDropsTrailingZerosAsGoDoes) {
  EXPECT_EQ(format_time(at("2024-11-04T09:01:02.120Z"), TimeFormat::RFC3339Nano), "2024-11-04T09:01:02.12Z");
  EXPECT_EQ(format_time(at("2024-11-04T09:01:02Z"), TimeFormat::RFC3339Nano), "2024-11-04T09:01:02Z");
  EXPECT_EQ(format_time(at("2024-11-04T09:01:02Z"), TimeFormat::RFC3339Milli), "2024-11-04T09:01:02.000Z");
}

TEST(ObserveTimeFormat, UnknownNamesListTheKnownOnes) {
  EXPECT_EQ(pilus::testing::error_of([] { parse_time_format("Kitchen"); }),
            "unknown time format 'Kitchen' (known: StampMilli, YearMonthDay, YearMonthDayHour, "
            "YearMonthDayHourMinute, RFC3339, RFC3339Milli, RFC3339Micro, RFC3339Nano, RFC1123Z)");
}

TEST(ObserveTimeFormat, CompactLinesUseTheChosenFormat) {
  Flow f;
  f.time = at("2024-11-04T09:01:02.5Z");
  f.kind = EventKind::Trace;
  f.trace_point = TracePoint::FromEndpoint;
  f.verdict = Verdict::Forwarded;
  f.is_reply = false;
  f.summary = "UDP";
  FormatOptions o;
  o.time_format = TimeFormat::RFC3339;
  EXPECT_THAT(format_compact(f, o), ::testing::StartsWith("2024-11-04T09:01:02Z: "));
  EXPECT_THAT(format_compact(f, o), HasSubstr(" from-endpoint FORWARDED (UDP)"));
}

// Hubble names where a trace was observed; the source's egress and the destination's ingress of
// one packet differ in it.
TEST(ObserveTimeFormat, TraceFlowsCarryTheirObservationPoint) {
  Flow f;
  f.kind = EventKind::Trace;
  f.verdict = Verdict::Forwarded;
  f.trace_point = TracePoint::ToEndpoint;
  EXPECT_EQ(flow_to_json(f)["trace_observation_point"], "TO_ENDPOINT");
  f.trace_point = TracePoint::FromEndpoint;
  EXPECT_EQ(flow_to_json(f)["trace_observation_point"], "FROM_ENDPOINT");
  EXPECT_EQ(flow_from_json(flow_to_json(f)).trace_point, TracePoint::FromEndpoint);
  f.kind = EventKind::Drop;
  EXPECT_FALSE(flow_to_json(f).contains("trace_observation_point"));
}

}  // namespace
}  // namespace pilus::observe
