// The API's paths and query parameters, for the agent's routes and the CLI's requests alike.
#pragma once

namespace pilus::api::v1 {

namespace path {
inline constexpr const char* kHealthz = "/v1/healthz";
inline constexpr const char* kStatus = "/v1/status";
inline constexpr const char* kPods = "/v1/pods";
inline constexpr const char* kEndpoints = "/v1/endpoints";
inline constexpr const char* kIdentities = "/v1/identities";
inline constexpr const char* kNamespaces = "/v1/namespaces";
inline constexpr const char* kPolicies = "/v1/policies";
inline constexpr const char* kServices = "/v1/services";
inline constexpr const char* kPolicyTrace = "/v1/policy/trace";
inline constexpr const char* kFlows = "/v1/flows";
inline constexpr const char* kApply = "/v1/apply";
inline constexpr const char* kDelete = "/v1/delete";
inline constexpr const char* kBpfConntrack = "/v1/bpf/ct";
inline constexpr const char* kBpfConntrackGc = "/v1/bpf/ct/gc";
inline constexpr const char* kBpfIpcache = "/v1/bpf/ipcache";
inline constexpr const char* kBpfEndpoints = "/v1/bpf/endpoints";
inline constexpr const char* kBpfPolicy = "/v1/bpf/policy";
inline constexpr const char* kBpfLb = "/v1/bpf/lb";
}  // namespace path

namespace query {
// The list routes (kubectl's -n and -l).
inline constexpr const char* kNamespace = "namespace";
inline constexpr const char* kLabelSelector = "labelSelector";
// /v1/bpf/policy
inline constexpr const char* kPod = "pod";
// /v1/apply: dryRun=All, as the Kubernetes API takes it.
inline constexpr const char* kDryRun = "dryRun";
inline constexpr const char* kDryRunAll = "All";
// /v1/policy/trace: each end is from/to (a pod or an address) or fromLabels/toLabels
// ("app=web,tier=db") in fromNamespace/toNamespace.
inline constexpr const char* kFrom = "from";
inline constexpr const char* kTo = "to";
inline constexpr const char* kEndNamespaceSuffix = "Namespace";
inline constexpr const char* kEndLabelsSuffix = "Labels";
inline constexpr const char* kPort = "port";
inline constexpr const char* kProtocol = "protocol";
}  // namespace query

}  // namespace pilus::api::v1
