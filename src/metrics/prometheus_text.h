// Prometheus text exposition format (version 0.0.4): families with HELP and
// TYPE lines, then samples with escaped label values.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace pilus::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class PrometheusText {
 public:
  // type: "counter" or "gauge". Samples added after it belong to this family.
  void family(const std::string& name, const std::string& type, const std::string& help);
  void sample(const std::string& name, const Labels& labels, double value);
  void sample(const std::string& name, double value) { sample(name, {}, value); }
  const std::string& text() const { return out_; }

 private:
  std::string out_;
};

std::string escape_label_value(const std::string& v);

}  // namespace pilus::metrics
