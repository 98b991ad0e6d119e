#include "metrics/prometheus_text.h"

#include <cmath>

#include <fmt/format.h>

namespace pilus::metrics {

std::string escape_label_value(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void PrometheusText::family(const std::string& name, const std::string& type, const std::string& help) {
  out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void PrometheusText::sample(const std::string& name, const Labels& labels, double value) {
  out_ += name;
  if (!labels.empty()) {
    out_ += '{';
    for (size_t i = 0; i < labels.size(); i++)
      out_ += fmt::format("{}{}=\"{}\"", i ? "," : "", labels[i].first, escape_label_value(labels[i].second));
    out_ += '}';
  }
  if (std::floor(value) == value && std::fabs(value) < 1e15)
    out_ += fmt::format(" {}\n", static_cast<long long>(value));
  else
    out_ += fmt::format(" {}\n", value);
}

}  // namespace pilus::metrics
