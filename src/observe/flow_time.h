// Time text for flows: RFC 3339 (JSON), Hubble's compact stamp, and --since/--until values.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "observe/flow.h"

namespace pilus::observe {

// "2024-11-24T10:01:02.123456789Z": UTC with 0, 3, 6 or 9 fraction digits (as protobuf JSON does).
std::string format_rfc3339(TimePoint t);
// RFC 3339 with any fraction and a 'Z' or ±hh:mm offset. Throws pilus::Error naming the text.
TimePoint parse_rfc3339(std::string_view text);

// "Nov 24 10:01:02.123" (Go's time.StampMilli: the day is space-padded), in UTC or local time.
std::string format_stamp_milli(TimePoint t, bool local_time = false);

// hubble observe's --time-format values, with Go's layouts (UTC prints its offset as "Z", or "+0000"):
//   StampMilli             Nov 24 10:01:02.123 (the default)
//   YearMonthDay           2024-11-24
//   YearMonthDayHour       2024-11-24T10Z
//   YearMonthDayHourMinute 2024-11-24T10:01Z
//   RFC3339                2024-11-24T10:01:02Z
//   RFC3339Milli           2024-11-24T10:01:02.123Z
//   RFC3339Micro           2024-11-24T10:01:02.123456Z
//   RFC3339Nano            2024-11-24T10:01:02.123456789Z (trailing zeros dropped, as Go does)
//   RFC1123Z               Sun, 24 Nov 2024 10:01:02 +0000
enum class TimeFormat {
  StampMilli,
  YearMonthDay,
  YearMonthDayHour,
  YearMonthDayHourMinute,
  RFC3339,
  RFC3339Milli,
  RFC3339Micro,
  RFC3339Nano,
  RFC1123Z,
};
// The name, case-insensitive; throws pilus::Error listing the known names otherwise.
TimeFormat parse_time_format(std::string_view name);
std::string format_time(TimePoint t, TimeFormat format, bool local_time = false);

// Go-style duration: "90s", "5m", "1h30m", "1.5h", "250ms". Throws pilus::Error on anything else.
std::chrono::nanoseconds parse_duration(std::string_view text);

// A --since/--until value, as hubble observe takes it: a duration meaning that long before `now`,
// an RFC 3339 time, "YYYY-MM-DDTHH:MM:SS" or "YYYY-MM-DD" (UTC when no offset is given).
TimePoint parse_time_arg(std::string_view text, TimePoint now);

}  // namespace pilus::observe
