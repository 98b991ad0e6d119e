// Prometheus text format: families, labels, escaping, number rendering.
#include <gtest/gtest.h>

#include "metrics/prometheus_text.h"

using pilus::metrics::PrometheusText;

TEST(PrometheusTextTest, FamilyWithLabelledSamples) {
  PrometheusText t;
  t.family("cilium_drop_count_total", "counter", "Packets dropped");
  t.sample("cilium_drop_count_total", {{"reason", "Policy denied"}, {"direction", "INGRESS"}}, 3);
  t.sample("cilium_drop_count_total", {{"reason", "NO_ROUTE_TO_OUTSIDE"}, {"direction", "EGRESS"}}, 12);
  EXPECT_EQ(t.text(),
            "# HELP cilium_drop_count_total Packets dropped\n"
            "# TYPE cilium_drop_count_total counter\n"
            "cilium_drop_count_total{reason=\"Policy denied\",direction=\"INGRESS\"} 3\n"
            "cilium_drop_count_total{reason=\"NO_ROUTE_TO_OUTSIDE\",direction=\"EGRESS\"} 12\n");
}

TEST(PrometheusTextTest, EscapesLabelValuesAndKeepsFractions) {
  PrometheusText t;
  t.sample("m", {{"l", "a\"b\\c\nd"}}, 0.25);
  t.sample("n", 1e20);
  EXPECT_EQ(t.text(), "m{l=\"a\\\"b\\\\c\\nd\"} 0.25\nn 1e+20\n");
}
