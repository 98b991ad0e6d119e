// RFC 3339 and duration parsing without locale or TZ surprises: only timegm/gmtime_r/localtime_r.
#include "observe/flow_time.h"

#include <cctype>
#include <ctime>
#include <utility>

#include <fmt/format.h>

#include "common/error.h"

namespace pilus::observe {

namespace {

using std::chrono::nanoseconds;

constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Splits a time point into whole seconds and nanoseconds, flooring so pre-1970 times stay valid.
void split(TimePoint t, time_t& secs, long& nanos) {
  auto ns = std::chrono::duration_cast<nanoseconds>(t.time_since_epoch()).count();
  secs = static_cast<time_t>(ns / 1'000'000'000);
  nanos = static_cast<long>(ns % 1'000'000'000);
  if (nanos < 0) {
    nanos += 1'000'000'000;
    --secs;
  }
}

// Reads exactly n decimal digits at text[pos]; -1 when they are not there.
int digits(std::string_view text, size_t pos, size_t n) {
  if (pos + n > text.size()) return -1;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (text[i] < '0' || text[i] > '9') return -1;
    v = v * 10 + (text[i] - '0');
  }
  return v;
}

}  // namespace

std::string format_rfc3339(TimePoint t) {
  time_t secs;
  long nanos;
  split(t, secs, nanos);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  std::string out = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1,
                                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  if (nanos != 0) {
    if (nanos % 1'000'000 == 0) {
      out += fmt::format(".{:03}", nanos / 1'000'000);
    } else if (nanos % 1'000 == 0) {
      out += fmt::format(".{:06}", nanos / 1'000);
    } else {
      out += fmt::format(".{:09}", nanos);
    }
  }
  out += 'Z';
  return out;
}

namespace {

constexpr std::pair<std::string_view, TimeFormat> kTimeFormats[] = {
    {"StampMilli", TimeFormat::StampMilli},
    {"YearMonthDay", TimeFormat::YearMonthDay},
    {"YearMonthDayHour", TimeFormat::YearMonthDayHour},
    {"YearMonthDayHourMinute", TimeFormat::YearMonthDayHourMinute},
    {"RFC3339", TimeFormat::RFC3339},
    {"RFC3339Milli", TimeFormat::RFC3339Milli},
    {"RFC3339Micro", TimeFormat::RFC3339Micro},
    {"RFC3339Nano", TimeFormat::RFC3339Nano},
    {"RFC1123Z", TimeFormat::RFC1123Z},
};

bool same_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

// Go's "Z07:00" (colon) and "-0700" (no colon) zone forms.
std::string zone_text(long offset_secs, bool colon) {
  if (offset_secs == 0 && colon) return "Z";
  char sign = offset_secs < 0 ? '-' : '+';
  long abs = offset_secs < 0 ? -offset_secs : offset_secs;
  if (colon) return fmt::format("{}{:02}:{:02}", sign, abs / 3600, abs % 3600 / 60);
  return fmt::format("{}{:02}{:02}", sign, abs / 3600, abs % 3600 / 60);
}

}  // namespace

TimeFormat parse_time_format(std::string_view name) {
  for (const auto& [n, f] : kTimeFormats)
    if (same_ignoring_case(n, name)) return f;
  std::string known;
  for (const auto& [n, f] : kTimeFormats) known += (known.empty() ? "" : ", ") + std::string(n);
  fail("unknown time format '{}' (known: {})", name, known);
}

std::string format_time(TimePoint t, TimeFormat format, bool local_time) {
  if (format == TimeFormat::StampMilli) return format_stamp_milli(t, local_time);
  time_t secs;
  long nanos;
  split(t, secs, nanos);
  std::tm tm{};
  if (local_time)
    localtime_r(&secs, &tm);
  else
    gmtime_r(&secs, &tm);
  const long offset = local_time ? tm.tm_gmtoff : 0;
  std::string date = fmt::format("{:04}-{:02}-{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
  std::string clock = fmt::format("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec);
  switch (format) {
    case TimeFormat::YearMonthDay: return date;
    case TimeFormat::YearMonthDayHour: return fmt::format("{}T{:02}{}", date, tm.tm_hour, zone_text(offset, true));
    case TimeFormat::YearMonthDayHourMinute:
      return fmt::format("{}T{:02}:{:02}{}", date, tm.tm_hour, tm.tm_min, zone_text(offset, true));
    case TimeFormat::RFC3339: return fmt::format("{}T{}{}", date, clock, zone_text(offset, true));
    case TimeFormat::RFC3339Milli:
      return fmt::format("{}T{}.{:03}{}", date, clock, nanos / 1'000'000, zone_text(offset, true));
    case TimeFormat::RFC3339Micro:
      return fmt::format("{}T{}.{:06}{}", date, clock, nanos / 1'000, zone_text(offset, true));
    case TimeFormat::RFC3339Nano: {
      std::string fraction = nanos ? fmt::format(".{:09}", nanos) : "";
      while (!fraction.empty() && fraction.back() == '0') fraction.pop_back();
      return fmt::format("{}T{}{}{}", date, clock, fraction, zone_text(offset, true));
    }
    case TimeFormat::RFC1123Z: {
      static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
      return fmt::format("{}, {:02} {} {:04} {} {}", kDays[tm.tm_wday], tm.tm_mday, kMonths[tm.tm_mon],
                         tm.tm_year + 1900, clock, zone_text(offset, false));
    }
    case TimeFormat::StampMilli: break;
  }
  return format_stamp_milli(t, local_time);
}

TimePoint parse_rfc3339(std::string_view text) {
  auto bad = [&]() -> TimePoint { fail("invalid time '{}' (expected RFC 3339, e.g. 2024-11-24T10:01:02Z)", text); };
  // YYYY-MM-DDTHH:MM:SS
  if (text.size() < 19 || text[4] != '-' || text[7] != '-' || (text[10] != 'T' && text[10] != 't' && text[10] != ' ') ||
      text[13] != ':' || text[16] != ':')
    return bad();
  int year = digits(text, 0, 4), mon = digits(text, 5, 2), day = digits(text, 8, 2);
  int hour = digits(text, 11, 2), min = digits(text, 14, 2), sec = digits(text, 17, 2);
  if (year < 0 || mon < 1 || mon > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 || min < 0 || min > 59 ||
      sec < 0 || sec > 60)
    return bad();
  size_t pos = 19;
  int64_t nanos = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    size_t start = pos;
    int64_t scale = 100'000'000;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      nanos += (text[pos] - '0') * scale;  // digits past nanoseconds are dropped (scale reaches 0)
      scale /= 10;
      ++pos;
    }
    if (pos == start) return bad();
  }
  int64_t offset_secs = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int oh = digits(text, pos + 1, 2), om = digits(text, pos + 4, 2);
    if (oh < 0 || om < 0 || pos + 3 >= text.size() || text[pos + 3] != ':') return bad();
    offset_secs = (oh * 3600 + om * 60) * (text[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return bad();
  }
  if (pos != text.size()) return bad();
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  int64_t secs = static_cast<int64_t>(timegm(&tm)) - offset_secs;
  return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(secs) + nanoseconds(nanos)));
}

std::string format_stamp_milli(TimePoint t, bool local_time) {
  time_t secs;
  long nanos;
  split(t, secs, nanos);
  std::tm tm{};
  if (local_time) {
    localtime_r(&secs, &tm);
  } else {
    gmtime_r(&secs, &tm);
  }
  return fmt::format("{} {:>2} {:02}:{:02}:{:02}.{:03}", kMonths[tm.tm_mon], tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, nanos / 1'000'000);
}

std::chrono::nanoseconds parse_duration(std::string_view text) {
  auto bad = [&]() -> nanoseconds { fail("invalid duration '{}' (expected e.g. 30s, 5m, 1h30m)", text); };
  if (text.empty()) return bad();
  long double total = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t start = pos;
    long double value = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') value = value * 10 + (text[pos++] - '0');
    if (pos < text.size() && text[pos] == '.') {
      ++pos;
      long double scale = 0.1L;
      while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
        value += (text[pos++] - '0') * scale;
        scale /= 10;
      }
    }
    if (pos == start || (pos - start == 1 && text[start] == '.')) return bad();
    size_t unit_start = pos;
    while (pos < text.size() && !(text[pos] >= '0' && text[pos] <= '9') && text[pos] != '.') ++pos;
    std::string_view unit = text.substr(unit_start, pos - unit_start);
    long double scale;
    if (unit == "ns") {
      scale = 1;
    } else if (unit == "us" || unit == "\xC2\xB5s") {
      scale = 1e3L;
    } else if (unit == "ms") {
      scale = 1e6L;
    } else if (unit == "s") {
      scale = 1e9L;
    } else if (unit == "m") {
      scale = 60e9L;
    } else if (unit == "h") {
      scale = 3600e9L;
    } else {
      return bad();  // a bare number is ambiguous: Go rejects it too
    }
    total += value * scale;
  }
  if (total > 9.2e18L) return bad();
  return nanoseconds(static_cast<int64_t>(total));
}

TimePoint parse_time_arg(std::string_view text, TimePoint now) {
  if (text.empty()) fail("empty time value");
  // A date starts with four digits and a '-'; anything else that starts with a digit is a duration.
  bool looks_like_date = text.size() >= 10 && digits(text, 0, 4) >= 0 && text[4] == '-';
  if (!looks_like_date) {
    return now - std::chrono::duration_cast<Clock::duration>(parse_duration(text));
  }
  if (text.size() == 10) return parse_rfc3339(std::string(text) + "T00:00:00Z");
  if (text.size() == 19) return parse_rfc3339(std::string(text) + "Z");
  return parse_rfc3339(text);
}

}  // namespace pilus::observe
