// The typed API (src/api/v1): each type reads the JSON the agent has always answered and writes it
// back byte for byte the same, so the wire format (`pilus get -o json`, scripts, hidden tests) is
// pinned here; a missing or mistyped field is an error naming its path.
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/api_routes.h"
#include "api/v1/apply.h"
#include "api/v1/bpf_maps.h"
#include "api/v1/endpoints.h"
#include "api/v1/errors.h"
#include "api/v1/identities.h"
#include "api/v1/namespaces.h"
#include "api/v1/pods.h"
#include "api/v1/policies.h"
#include "api/v1/services.h"
#include "api/v1/status.h"
#include "api/v1/trace.h"
#include "unit/error_of.h"

namespace pilus::api::v1 {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using pilus::testing::error_of;

// Reads `text` as a T and writes it again: the same JSON must come out.
template <class T>
void expect_round_trip(const std::string& text) {
  json wire = json::parse(text);
  T value = decode<T>(wire, "test");
  EXPECT_EQ(json(value), wire) << text;
  // nlohmann's own get<T>() goes through the same fields.
  EXPECT_EQ(json(wire.get<T>()), wire) << text;
}

TEST(ApiTypes, PodsRoundTrip) {
  expect_round_trip<PodList>(R"({"apiVersion": "v1", "kind": "List", "items": [
    {"apiVersion": "v1", "kind": "Pod",
     "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}, "annotations": {"a": "b"}},
     "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep"], "args": ["1"],
                              "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"},
                                        {"containerPort": 53, "protocol": "UDP"}]},
                             {"name": "bare"}],
              "nodeName": "node1"},
     "status": {"podIP": "10.244.0.5", "podIPs": [{"ip": "10.244.0.5"}], "hostIP": "10.244.0.1", "netns": "pilus-x",
                "identity": 256, "phase": "Running", "hostInterface": "lxc1", "endpointID": 12, "pid": 4242}},
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bare", "namespace": "shop", "labels": {}},
     "spec": {"containers": [], "nodeName": ""},
     "status": {"podIP": "10.244.0.6", "podIPs": [{"ip": "10.244.0.6"}], "hostIP": "10.244.0.1", "netns": "",
                "identity": 0, "phase": "Pending", "hostInterface": "", "endpointID": 0, "pid": 0}}]})");
}

TEST(ApiTypes, PodsAreWrittenAsTheKubernetesApiShapesThem) {
  Pod pod;
  pod.metadata = {"web", "default", {{"app", "web"}}, {}};
  pod.spec.containers.push_back({"c", "", {}, {}, {{8080, "TCP", ""}}});
  pod.status.pod_ip = "10.244.0.5";
  json j = pod;
  EXPECT_EQ(j["apiVersion"], "v1");
  EXPECT_EQ(j["kind"], "Pod");
  EXPECT_FALSE(j["metadata"].contains("annotations")) << "empty annotations are left out";
  EXPECT_EQ(j["spec"]["containers"][0], json::parse(R"({"name": "c", "ports": [{"containerPort": 8080, "protocol": "TCP"}]})"));
  EXPECT_EQ(j["status"]["podIP"], "10.244.0.5");
}

TEST(ApiTypes, EndpointsIdentitiesNamespacesRoundTrip) {
  expect_round_trip<EndpointList>(R"({"items": [{"id": 12, "pod": "default/web", "ipv4": "10.244.0.5", "identity": 256,
    "labels": ["k8s:app=web"], "interface": "lxc1", "ifindex": 7, "netns": "pilus-x", "state": "ready"}]})");
  expect_round_trip<IdentityList>(R"({"items": [{"id": 2, "labels": ["reserved:world"], "references": 0, "reserved": true},
    {"id": 256, "labels": ["k8s:app=web"], "references": 3, "reserved": false}]})");
  expect_round_trip<NamespaceList>(R"({"apiVersion": "v1", "kind": "List", "items": [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default", "labels": {}}, "status": {"phase": "Active"}},
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"team": "a"}},
     "status": {"phase": "Active"}}]})");
}

TEST(ApiTypes, PoliciesRoundTripWithTheManifestsSpecUntouched) {
  expect_round_trip<PolicyList>(R"({"apiVersion": "v1", "kind": "List", "items": [
    {"kind": "CiliumNetworkPolicy", "apiVersion": "cilium.io/v2",
     "metadata": {"name": "p", "namespace": "default", "labels": {"team": "a"}},
     "namespace": "default", "name": "p", "selects": ["k8s:app=web"], "endpoints": 1,
     "rules": [{"path": "spec.ingress[0]", "direction": "ingress", "deny": false, "peers": ["all"], "ports": ["80/TCP"],
                "httpRules": 2}],
     "l7Rules": 1, "spec": {"endpointSelector": {"matchLabels": {"app": "web"}}, "ingress": [{}]}},
    {"kind": "CiliumClusterwideNetworkPolicy", "apiVersion": "cilium.io/v2", "metadata": {"name": "c"},
     "namespace": "", "name": "c", "selects": [], "endpoints": 0, "rules": [], "l7Rules": 0,
     "specs": [{"endpointSelector": {}}, {"nodeSelector": null}]},
    {"kind": "NetworkPolicy", "apiVersion": "networking.k8s.io/v1", "metadata": {"name": "n", "namespace": "shop", "labels": {}},
     "namespace": "shop", "name": "n", "selects": [], "endpoints": 0, "rules": [], "l7Rules": 0, "spec": {}}]})");
}

TEST(ApiTypes, ServicesRoundTripWithTargetPortsByNumberOrName) {
  expect_round_trip<ServiceList>(R"({"apiVersion": "v1", "kind": "List", "items": [
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "default", "labels": {}},
     "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10",
              "ports": [{"protocol": "TCP", "port": 80, "name": "http", "targetPort": "web"},
                        {"protocol": "UDP", "port": 53, "targetPort": 5353}],
              "selector": {"app": "web"}, "sessionAffinity": "None"},
     "status": {"backends": [{"pod": "default/web", "ip": "10.244.0.5", "port": 8080, "protocol": "TCP"}]}}]})");
  auto port = decode<ServicePort>(json::parse(R"({"protocol": "TCP", "port": 80, "targetPort": "web"})"), "test");
  EXPECT_EQ(port.target_port.text(), "web");
  EXPECT_EQ(decode<ServicePort>(json::parse(R"({"protocol": "TCP", "port": 80, "targetPort": 8080})"), "test").target_port.text(),
            "8080");
}

TEST(ApiTypes, StatusRoundTripsWithTheProxyRunningOrDisabled) {
  const std::string running = R"({"health": "Ok", "kernel": "6.1.0", "uptimeSeconds": 12, "podCIDR": "10.244.0.0/24",
    "routerIP": "10.244.0.1", "bpfRoot": "/sys/fs/bpf/pilus", "datapath": "loaded fresh", "endpoints": 2,
    "identities": 1, "policies": 3, "policyMap": {"entries": 10, "maxEntries": 65536, "lastRefusal": null},
    "l7Policy": "no HTTP rules",
    "proxy": {"state": "running", "address": "10.244.0.1:15001", "redirectEntries": 1, "redirects": 2,
              "activeConnections": 0, "requests": 3, "forwarded": 2, "denied": 1, "parseErrors": 0, "timeouts": 0,
              "upstreamErrors": 0, "clientAborts": 0, "rejectedConnections": 0, "rejectedPerIdentity": 0,
              "descriptorsExhausted": 0, "invalidTargets": 0, "invalidFraming": 0},
    "ipv6": "not supported", "lostEvents": 0, "observeFollowers": 0, "conntrackGC": {"runs": 4, "deleted": 5},
    "kernelFeatures": [{"name": "BPF ring buffer", "required": true, "available": true}],
    "maps": [{"name": "policy", "entries": 10, "maxEntries": 65536, "pressure": 0.000152587890625},
             {"name": "lb_maglev", "entries": 0, "maxEntries": 0, "pressure": 0.0}]})";
  expect_round_trip<Status>(running);
  json disabled = json::parse(running);
  disabled["proxy"] = {{"state", "disabled"}};
  disabled["policyMap"]["lastRefusal"] = "policy map full";
  expect_round_trip<Status>(disabled.dump());
  Status s = decode<Status>(disabled, "test");
  EXPECT_EQ(s.policy_map.last_refusal, "policy map full");
  EXPECT_FALSE(s.proxy.address.has_value());
  EXPECT_TRUE(json(Status{})["policyMap"]["lastRefusal"].is_null()) << "no refusal is written as null";
}

TEST(ApiTypes, ApplyDeleteAndTheirRequestsRoundTrip) {
  expect_round_trip<ApplyRequest>(R"({"sources": [{"name": "a.yaml", "text": "kind: Pod\n"}]})");
  expect_round_trip<ApplyResponse>(R"({"results": [{"kind": "Pod", "namespace": "default", "name": "web", "action": "created"},
    {"kind": "Namespace", "name": "shop", "action": "unchanged"}], "warnings": ["spec.x: ignored"], "notes": ["one-sided"]})");
  expect_round_trip<ApplyResponse>(R"({"results": [], "warnings": [], "dryRun": true})");
  expect_round_trip<DeleteResponse>(R"({"results": [{"kind": "Service", "namespace": "default", "name": "s", "action": "not found"}]})");
  // Empty notes and a real apply leave their keys out, as before.
  EXPECT_EQ(json(ApplyResponse{}), json::parse(R"({"results": [], "warnings": []})"));
}

TEST(ApiTypes, TraceRoundTripsWithTheRoutingStepWithoutDirection) {
  expect_round_trip<PolicyTrace>(R"({"from": "default/a", "fromIdentity": 256, "to": "1.1.1.1", "toIdentity": 2, "port": 80,
    "protocol": "tcp", "verdict": "DENIED", "steps": [
      {"endpoint": "default/a", "direction": "egress", "verdict": "ALLOWED", "reason": "", "decidedBy": "CiliumNetworkPolicy default/p spec.egress[0]"},
      {"endpoint": "1.1.1.1", "verdict": "DENIED", "reason": "NO_ROUTE_TO_OUTSIDE", "decidedBy": "the node is a sandbox"}]})");
}

TEST(ApiTypes, BpfMapsRoundTrip) {
  expect_round_trip<ConntrackList>(R"({"items": [{"source": "10.244.0.5:40000", "destination": "10.244.0.6:80",
    "protocol": "TCP", "scope": "egress", "packetsForward": 3, "bytesForward": 180, "packetsReply": 2, "bytesReply": 120,
    "expires": 5000, "sourceIdentity": 256, "closing": false, "seenReply": true}]})");
  expect_round_trip<IpcacheList>(R"({"items": [{"prefix": "10.244.0.5/32", "identity": 256, "kind": "local-pod"}]})");
  expect_round_trip<BpfEndpoints>(R"({"items": [{"ip": "10.244.0.5", "ifindex": 7, "identity": 256, "endpointID": 12}],
    "counters": [{"endpointID": 12, "reason": "POLICY_DENIED", "direction": "ingress", "packets": 1, "bytes": 60}]})");
  expect_round_trip<BpfPolicy>(R"j({"pod": "default/web", "endpointID": 12, "defaultDeny": {"ingress": true, "egress": false},
    "items": [{"direction": "ingress", "identity": 0, "labels": "(any)", "port": "80/TCP", "verdict": "redirect",
               "proxyPort": 15001, "rule": "CiliumNetworkPolicy default/p"}]})j");
  expect_round_trip<BpfLb>(R"({"maglev_table_size": 16381, "algorithm": "maglev", "services": [
    {"service": "default/s", "vip": "10.96.0.10", "port": 80, "protocol": "TCP", "service_id": 1, "backend_count": 1,
     "session_affinity": "None", "maglev_table_size": 16381,
     "backends": [{"id": 1, "address": "10.244.0.5", "port": 8080, "state": "active", "maglev_slots": 16381}]}]})");
  expect_round_trip<ConntrackGcResult>(R"({"deleted": 7})");
  expect_round_trip<ErrorBody>(R"({"error": "pod \"x\" not found"})");
  expect_round_trip<Health>(R"({"health": "Ok"})");
}

TEST(ApiTypes, TheStreamedConntrackListReadsAsAList) {
  ConntrackEntry e;
  e.source = "10.244.0.5:1";
  std::string text = list_stream_open() + json(e).dump() + "," + json(e).dump() + list_stream_close();
  EXPECT_EQ(parse<ConntrackList>(text, "test").items.size(), 2u);
  EXPECT_EQ(parse<ConntrackList>(list_stream_open() + list_stream_close(), "test").items.size(), 0u);
}

// ---- errors name the field ----

json sample_pods() {
  PodList list = PodList::kube();
  list.items.emplace_back().metadata = {"web", "default", {{"app", "web"}}, {}};
  return list;
}

TEST(ApiTypes, AMissingFieldIsAnErrorNamingItsPath) {
  json j = sample_pods();
  j["items"][0]["status"].erase("podIP");
  EXPECT_EQ(error_of([&] { decode<PodList>(j, "the agent's answer"); }),
            "the agent's answer: items[0].status.podIP: missing");
  j = sample_pods();
  j.erase("items");
  EXPECT_EQ(error_of([&] { decode<PodList>(j, "the agent's answer"); }), "the agent's answer: items: missing");
  // Fields left out when empty may be absent.
  j = sample_pods();
  ASSERT_FALSE(j["items"][0]["metadata"].contains("annotations"));
  EXPECT_NO_THROW(decode<PodList>(j, "test"));
}

TEST(ApiTypes, AMistypedFieldIsAnErrorNamingItsPath) {
  json j = sample_pods();
  j["items"][0]["status"]["identity"] = "256";
  EXPECT_EQ(error_of([&] { decode<PodList>(j, "x"); }), "x: items[0].status.identity: must be an integer, not a string");
  j = sample_pods();
  j["items"][0]["metadata"]["labels"]["app"] = 5;
  EXPECT_EQ(error_of([&] { decode<PodList>(j, "x"); }), "x: items[0].metadata.labels.app: must be a string, not an integer");
  j = sample_pods();
  j["items"][0]["status"]["endpointID"] = 70000;
  EXPECT_EQ(error_of([&] { decode<PodList>(j, "x"); }), "x: items[0].status.endpointID: 70000 is out of range");
  j = sample_pods();
  j["items"][0]["status"]["identity"] = -1;
  EXPECT_EQ(error_of([&] { decode<PodList>(j, "x"); }), "x: items[0].status.identity: -1 is negative");
  j = sample_pods();
  j["items"] = json::object();
  EXPECT_EQ(error_of([&] { decode<PodList>(j, "x"); }), "x: items: must be an array, not an object");
  j = sample_pods();
  j["items"][0]["spec"] = json::array();
  EXPECT_EQ(error_of([&] { decode<PodList>(j, "x"); }), "x: items[0].spec: must be an object, not an array");
  EXPECT_EQ(error_of([] { decode<ServicePort>(json::parse(R"({"protocol": "TCP", "port": 80, "targetPort": true})"), "x"); }),
            "x: targetPort: must be an integer, not a boolean");
  EXPECT_EQ(error_of([] { decode<Status>(json::array(), "x"); }), "x: the body: must be an object, not an array");
  EXPECT_THAT(error_of([] { parse<Health>("{\"health\": ", "x"); }), HasSubstr("x: invalid JSON"));
  // nlohmann's get<T>() reads through the same path.
  EXPECT_EQ(error_of([] { json::parse(R"({"health": 1})").get<Health>(); }), "JSON: health: must be a string, not an integer");
}

// A bad apply or delete body is answered 400 with the field named (the API turns pilus::Error into 400).
TEST(ApiTypes, BadRequestBodiesNameTheField) {
  EXPECT_EQ(error_of([] { agent::sources_from_request(R"({"sources": [{"name": "a.yaml", "text": 5}]})"); }),
            "request body: sources[0].text: must be a string, not an integer");
  EXPECT_EQ(error_of([] { agent::sources_from_request(R"({"sources": [{"text": "kind: Pod"}]})"); }),
            "request body: sources[0].name: missing");
  EXPECT_EQ(error_of([] { agent::sources_from_request(R"({"files": []})"); }), "request body: sources: missing");
  EXPECT_EQ(error_of([] { agent::sources_from_request(R"({"sources": []})"); }), "no manifests given");
  EXPECT_THAT(error_of([] { agent::sources_from_request("{"); }), HasSubstr("invalid JSON"));
  auto sources = agent::sources_from_request(R"({"sources": [{"name": "a.yaml", "text": "kind: Pod\n"}]})");
  ASSERT_EQ(sources.size(), 1u);
  EXPECT_EQ(sources[0].name, "a.yaml");
  EXPECT_EQ(sources[0].text, "kind: Pod\n");
}

}  // namespace
}  // namespace pilus::api::v1
