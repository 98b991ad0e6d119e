// Policy corners beyond the traffic matrix: tracing pods that do not exist (by labels), a policy
// map too small for the policies (refused whole, reported in status), and allows that the other
// end's policy cancels (noted on apply).
#include <gmock/gmock.h>

#include "e2e/policy_fixture.h"

namespace pilus::e2e {
namespace {

using ::testing::HasSubstr;

const char* kAllowHttp = R"yaml(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-http
  namespace: $NS
spec:
  podSelector:
    matchLabels:
      app: backend
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: frontend
    ports:
    - protocol: TCP
      port: 80
)yaml";

using PolicyTraceLabels = PolicyTest;

TEST_F(PolicyTraceLabels, TracesPodsThatDoNotExistByTheirLabels) {
  create({server_in(ns(), "backend"), server_in(ns(), "frontend")});
  apply_ok(fill(kAllowHttp, {{"$NS", ns()}}));
  auto trace_labels = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"policy", "trace"});
    args.insert(args.end(), {"--dport", "80/tcp", "-o", "json"});
    CommandResult r = agent().pilus(args);
    if (!r.ok()) throw HarnessError(r.describe());
    return nlohmann::json::parse(r.out);
  };

  // A second frontend (not created) may reach the backend; a pod labelled otherwise may not.
  auto t = trace_labels({"--from-labels", "app=frontend,version=v2", "--from-namespace", ns(), "--to", ns() + "/backend"});
  EXPECT_EQ(t["verdict"], "ALLOWED") << t.dump(2);
  EXPECT_THAT(trace_step(t, "ingress").value("decidedBy", ""), HasSubstr("allow-http")) << t.dump(2);
  t = trace_labels({"--from-labels", "app=intruder", "--from-namespace", ns(), "--to", ns() + "/backend"});
  EXPECT_EQ(t["verdict"], "DENIED") << t.dump(2);
  EXPECT_EQ(trace_step(t, "ingress").value("reason", ""), "POLICY_DENIED") << t.dump(2);
  // The same labels in another namespace are another identity: podSelector is namespace-local.
  t = trace_labels({"--from-labels", "app=frontend", "--from-namespace", ns() + "-other", "--to", ns() + "/backend"});
  EXPECT_EQ(t["verdict"], "DENIED") << t.dump(2);

  // A backend that does not exist yet is selected by the policy through its labels.
  t = trace_labels({"--from", ns() + "/frontend", "--to-labels", "app=backend", "--to-labels", "version=next",
                    "--to-namespace", ns()});
  EXPECT_EQ(t["verdict"], "ALLOWED") << t.dump(2);
  t = trace_labels({"--from-labels", "app=frontend", "--from-namespace", ns(), "--to-labels", "app=backend",
                    "--to-namespace", ns()});
  EXPECT_EQ(t["verdict"], "ALLOWED") << t.dump(2);
  t = trace_labels({"--from-labels", "app=cache", "--from-namespace", ns(), "--to-labels", "app=backend",
                    "--to-namespace", ns()});
  EXPECT_EQ(t["verdict"], "DENIED") << t.dump(2);

  // The trace created nothing: no identity for the labels it imagined.
  for (const auto& id : agent().identities()) EXPECT_THAT(id.dump(), ::testing::Not(HasSubstr("intruder")));
  CommandResult bad = agent().pilus({"policy", "trace", "--from-labels", "app", "--to", ns() + "/backend"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.err + bad.out, HasSubstr("not key=value"));
}

class PolicyMapLimit : public PolicyTest {
 protected:
  TestAgent::Options agent_options() const override {
    TestAgent::Options o;
    o.agent_args = {"--policy-map-max", "3"};
    return o;
  }
};

TEST_F(PolicyMapLimit, ApplyNeedingMoreEntriesIsRefusedWholeAndReported) {
  create({server_in(ns(), "backend"), server_in(ns(), "frontend")});
  Peer backend = at(ns(), "backend"), frontend = at(ns(), "frontend");
  // Four ports from the frontend: four entries in a map of three.
  const std::string too_big = fill(R"yaml(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: many-ports
  namespace: $NS
spec:
  endpointSelector:
    matchLabels:
      app: backend
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: frontend
    toPorts:
    - ports:
      - {port: "80", protocol: TCP}
      - {port: "81", protocol: TCP}
      - {port: "82", protocol: TCP}
      - {port: "83", protocol: TCP}
)yaml",
                                   {{"$NS", ns()}});
  CommandResult r = agent().try_apply(too_big + "---\n" + fill(kAllowHttp, {{"$NS", ns()}}));
  EXPECT_NE(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.err + r.out, HasSubstr("policy map is full")) << r.describe();
  EXPECT_TRUE(policies().empty()) << "nothing of the refused apply stays: " << policies().dump();
  nlohmann::json st = status();
  EXPECT_THAT(st["policyMap"].value("lastRefusal", ""), HasSubstr("policy map is full")) << st.dump(2);
  EXPECT_EQ(st["policyMap"]["maxEntries"], 3) << st.dump(2);
  EXPECT_EQ(st["policyMap"]["entries"], 0) << st.dump(2);
  Matrix open;
  open.allow(frontend, backend, kAltTcpPort, "tcp");
  verify(open);  // still no policy: everything open

  apply_ok(fill(kAllowHttp, {{"$NS", ns()}}));  // one allow and the default-deny record fit
  Matrix m;
  m.allow(frontend, backend, kTcpPort, "tcp").deny(frontend, backend, kAltTcpPort, "tcp");
  verify(m);
  EXPECT_EQ(status()["policyMap"]["entries"], 2) << "the allow, and the record naming allow-http as the cause of "
                                                    "backend's default deny (for drop events)";
  EXPECT_TRUE(status()["policyMap"]["lastRefusal"].is_null()) << "a later apply succeeded: the refusal is history";
}

}  // namespace
}  // namespace pilus::e2e
