#include "endpoint/endpoint.h"

#include <fmt/format.h>

namespace pilus::endpoint {

std::string Endpoint::phase() const {
  if (process.pid == 0) return "Running";
  if (exit_code) return *exit_code == 0 ? "Succeeded" : "Failed";
  return process_alive(process) ? "Running" : "Succeeded";
}

static nlohmann::json mac_json(const datapath::Mac& m) { return datapath::mac_to_string(m); }

static datapath::Mac mac_parse(const std::string& s) {
  datapath::Mac m{};
  unsigned v[6] = {};
  if (sscanf(s.c_str(), "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) == 6)
    for (int i = 0; i < 6; i++) m[i] = static_cast<uint8_t>(v[i]);
  return m;
}

nlohmann::json to_json(const Endpoint& e) {
  nlohmann::json j = {{"id", e.id},           {"namespace", e.ns},  {"name", e.name},
                      {"netns", e.netns},     {"hostIf", e.host_if}, {"ip", to_string(e.ip)},
                      {"hostMac", mac_json(e.host_mac)}, {"podMac", mac_json(e.pod_mac)},
                      {"identity", e.identity}, {"pid", e.process.pid}, {"pidStart", e.process.start_time}};
  if (e.exit_code) j["exitCode"] = *e.exit_code;
  if (e.runtime)
    j["runtime"] = {{"containerID", e.runtime->id},
                    {"netnsPath", e.runtime->netns_path},
                    {"ifName", e.runtime->if_name},
                    {"labels", e.runtime->labels}};
  return j;
}

Endpoint endpoint_from_json(const nlohmann::json& j) {
  Endpoint e;
  e.id = j.at("id").get<uint16_t>();
  e.ns = j.at("namespace").get<std::string>();
  e.name = j.at("name").get<std::string>();
  e.netns = j.at("netns").get<std::string>();
  e.host_if = j.at("hostIf").get<std::string>();
  e.ip = parse_ipv4(j.at("ip").get<std::string>());
  e.host_mac = mac_parse(j.at("hostMac").get<std::string>());
  e.pod_mac = mac_parse(j.at("podMac").get<std::string>());
  e.identity = j.at("identity").get<uint32_t>();
  e.process.pid = j.value("pid", 0);
  e.process.start_time = j.value("pidStart", uint64_t{0});
  if (j.contains("exitCode")) e.exit_code = j["exitCode"].get<int>();
  if (j.contains("runtime")) {
    const auto& r = j["runtime"];
    e.runtime = RuntimeContainer{r.at("containerID").get<std::string>(), r.at("netnsPath").get<std::string>(),
                                 r.value("ifName", std::string("eth0")),
                                 r.value("labels", std::map<std::string, std::string>{})};
  }
  return e;
}

// "_" never occurs in DNS labels, so namespace and name cannot run together.
std::string netns_name(const std::string& ns, const std::string& name) { return "pl-" + ns + "_" + name; }

std::string host_if_name(const std::string& netns) {
  uint32_t h = 2166136261u;  // FNV-1a: short, stable, fits IFNAMSIZ
  for (unsigned char c : netns) h = (h ^ c) * 16777619u;
  return fmt::format("pl{:08x}", h);
}

}  // namespace pilus::endpoint
