#include "cni/cni_plugin.h"

#include <algorithm>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/http_client.h"
#include "cni/podman_labels.h"
#include "common/error.h"

namespace pilus::cni {

namespace {

using json = nlohmann::json;

// The spec's error codes (CNI SPEC.md, "Error"), and pilus's own (100 and up).
enum Code {
  kIncompatibleVersion = 1,
  kUnsupportedField = 2,
  kUnknownContainer = 3,
  kInvalidEnvironment = 4,
  kIoFailure = 5,
  kDecodeFailure = 6,
  kInvalidConfig = 7,
  kTryAgainLater = 11,
  kPluginNotAvailable = 50,
  kAgentRefused = 100,
};

const std::vector<std::string> kSupportedVersions = {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"};

struct CniError {
  int code;
  std::string msg, details;
};

[[noreturn]] void raise(int code, std::string msg, std::string details = "") {
  throw CniError{code, std::move(msg), std::move(details)};
}

std::string env_or(const Invocation& in, const std::string& key, const std::string& fallback = "") {
  auto it = in.env.find(key);
  return it == in.env.end() ? fallback : it->second;
}

std::string required_env(const Invocation& in, const std::string& key) {
  std::string v = env_or(in, key);
  if (v.empty()) raise(kInvalidEnvironment, key + " is required for CNI_COMMAND " + env_or(in, "CNI_COMMAND"));
  return v;
}

// CNI_ARGS: "K1=V1;K2=V2".
std::map<std::string, std::string> cni_args(const std::string& text) {
  std::map<std::string, std::string> args;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(';', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) raise(kInvalidEnvironment, "CNI_ARGS: \"" + item + "\" is not KEY=VALUE");
    args[item.substr(0, eq)] = item.substr(eq + 1);
    start = end + 1;
  }
  return args;
}

bool version_before_1(const std::string& v) { return v.starts_with("0."); }

// The agent's result in the configuration's version: before 1.0.0 each IP names its version.
json versioned_result(json r, const std::string& version) {
  json out = {{"cniVersion", version},
              {"interfaces", r.at("interfaces")},
              {"ips", r.at("ips")},
              {"routes", r.at("routes")},
              {"dns", r.at("dns")}};
  if (version_before_1(version))
    for (auto& ip : out["ips"]) ip["version"] = "4";
  return out;
}

struct Agent {
  api::HttpClient client;
  json call(const std::string& path, const json& body, int unreachable_code) {
    api::Response resp;
    try {
      resp = client.request("POST", path, body.dump());
    } catch (const Error& e) {
      raise(unreachable_code, e.what());
    }
    json j = json::parse(resp.body, nullptr, false);
    if (resp.status != 200) {
      std::string msg = j.is_object() && j.contains("error") ? j["error"].get<std::string>() : resp.body;
      raise(kAgentRefused, "the pilus agent refused: " + msg);
    }
    return j;
  }
};

std::string run(const Invocation& in, std::string& version) {
  const std::string command = required_env(in, "CNI_COMMAND");
  json conf = json::parse(in.stdin_text, nullptr, false);
  if (!conf.is_object()) raise(kDecodeFailure, "the network configuration on stdin is not a JSON object");
  if (conf.contains("cniVersion") && conf["cniVersion"].is_string()) version = conf["cniVersion"];
  if (std::find(kSupportedVersions.begin(), kSupportedVersions.end(), version) == kSupportedVersions.end()) {
    std::string asked = version;
    version = "1.0.0";
    raise(kIncompatibleVersion, "cniVersion \"" + asked + "\" is not supported",
          "supported: 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0");
  }
  if (command == "VERSION") return json{{"cniVersion", version}, {"supportedVersions", kSupportedVersions}}.dump();

  std::string socket = "/run/pilus/pilus.sock";
  if (conf.contains("socket")) {
    if (!conf["socket"].is_string() || conf["socket"].get<std::string>().empty())
      raise(kInvalidConfig, "\"socket\" must be the path of the pilus agent's API socket");
    socket = conf["socket"];
  }
  Agent agent{api::HttpClient(socket)};
  if (command == "STATUS") {
    try {
      auto resp = agent.client.request("GET", "/v1/healthz");
      if (resp.status != 200) raise(kPluginNotAvailable, "the pilus agent at " + socket + " is not healthy: " + resp.body);
    } catch (const Error& e) {
      raise(kPluginNotAvailable, e.what());
    }
    return "";
  }
  if (command == "GC") {
    json valid = json::array();
    for (const auto& a : conf.value("cni.dev/valid-attachments", json::array()))
      if (a.is_object() && a.contains("containerID")) valid.push_back(a["containerID"]);
    agent.call("/v1/cni/gc", {{"validContainerIDs", valid}}, kTryAgainLater);
    return "";
  }
  if (command != "ADD" && command != "DEL" && command != "CHECK")
    raise(kInvalidEnvironment, "CNI_COMMAND \"" + command + "\" is not one of ADD, DEL, CHECK, VERSION, STATUS, GC");

  auto args = cni_args(env_or(in, "CNI_ARGS"));
  const std::string container_id = required_env(in, "CNI_CONTAINERID");
  const std::string if_name = required_env(in, "CNI_IFNAME");
  std::string netns = command == "DEL" ? env_or(in, "CNI_NETNS") : required_env(in, "CNI_NETNS");
  json request = {{"containerID", container_id},
                  {"netns", netns},
                  {"ifName", if_name},
                  {"namespace", args.count("K8S_POD_NAMESPACE") && !args["K8S_POD_NAMESPACE"].empty()
                                    ? args["K8S_POD_NAMESPACE"]
                                    : "default"},
                  // Without K8S_POD_NAME (a runtime other than podman), a name from the container's id.
                  {"name", args.count("K8S_POD_NAME") && !args["K8S_POD_NAME"].empty()
                               ? args["K8S_POD_NAME"]
                               : "cni-" + container_id.substr(0, 12)}};
  if (command == "DEL") {
    agent.call("/v1/cni/del", request, kTryAgainLater);
    return "";
  }
  if (command == "CHECK") {
    json current = agent.call("/v1/cni/check", request, kTryAgainLater);
    // The addresses the runtime was given (prevResult) must still be the endpoint's.
    if (auto prev = conf.find("prevResult"); prev != conf.end() && prev->is_object())
      for (const auto& ip : prev->value("ips", json::array())) {
        bool found = false;
        for (const auto& now : current.at("ips")) found |= now.at("address") == ip.value("address", json());
        if (!found) raise(kAgentRefused, "prevResult address " + ip.value("address", json("")).dump() +
                                             " is not the endpoint's any more");
      }
    return "";
  }
  // ADD: the container's own labels.
  json labels = json::object();
  if (auto a = conf.find("args"); a != conf.end() && a->is_object() && a->contains("cni") && (*a)["cni"].is_object())
    for (const auto& l : (*a)["cni"].value("labels", json::array()))
      if (l.is_object() && l.contains("key") && l.contains("value") && l["key"].is_string() && l["value"].is_string())
        labels[l["key"].get<std::string>()] = l["value"];
  std::string bolt = conf.value("podmanDatabase", std::string(kPodmanBoltDb));
  std::string sqlite = conf.value("podmanSqliteDatabase", std::string(kPodmanSqliteDb));
  try {
    if (auto own = podman_container_labels(bolt, sqlite, container_id))
      for (const auto& [k, v] : *own) labels[k] = v;
  } catch (const Error& e) {
    raise(kIoFailure, std::string("reading the container's labels: ") + e.what());
  }
  request["labels"] = labels;
  return versioned_result(agent.call("/v1/cni/add", request, kTryAgainLater), version).dump();
}

}  // namespace

Outcome run_plugin(const Invocation& in) {
  std::string version = "1.0.0";
  try {
    return {0, run(in, version)};
  } catch (const CniError& e) {
    json err = {{"cniVersion", version}, {"code", e.code}, {"msg", e.msg}};
    if (!e.details.empty()) err["details"] = e.details;
    return {1, err.dump()};
  } catch (const std::exception& e) {
    return {1, json{{"cniVersion", version}, {"code", kIoFailure}, {"msg", e.what()}}.dump()};
  }
}

}  // namespace pilus::cni
