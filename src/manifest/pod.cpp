// Validation of Pod manifests.
#include "manifest/pod.h"

#include <optional>

#include "common/error.h"
#include "manifest/validation.h"
#include "policy/proxy_visibility.h"

namespace pilus::manifest {

namespace {

// The pod's identity gets these from its namespace; letting a pod set them would
// let it claim another namespace's identity and pass that namespace's policies.
std::optional<std::string> reserved_label_error(std::string_view key) {
  if (key == "io.kubernetes.pod.namespace") {
    return fmt::format("label key \"{}\" is reserved: pilus sets it from metadata.namespace", key);
  }
  if (key.starts_with("io.cilium.k8s.")) {
    return fmt::format("label key \"{}\" is reserved: keys starting with \"io.cilium.k8s.\" are derived by pilus", key);
  }
  return std::nullopt;
}

// Command lines and environment go to execve, where a NUL would silently cut the string.
std::optional<std::string> argument_error(std::string_view s) {
  if (s.find('\0') != std::string_view::npos) return std::string("must not contain a NUL character");
  return std::nullopt;
}

// Ports must be unique across the whole pod, since all containers share one netns.
struct PortsSeen {
  std::map<std::string, std::string> names;                              // name -> path
  std::map<std::pair<uint16_t, std::string>, std::string> port_protocol;  // -> path
};

ContainerPort read_port(const Value& v, PortsSeen& seen) {
  return v.object([&](ObjectReader& r) {
    ContainerPort p;
    p.container_port = static_cast<uint16_t>(r.required("containerPort").integer(1, 65535));
    if (auto name = r.optional("name")) {
      p.name = name->string(port_name_error);
      auto [it, added] = seen.names.emplace(p.name, name->path());
      if (!added) name->fail("duplicate port name \"{}\" (also at {})", p.name, it->second);
    }
    if (auto protocol = r.optional("protocol")) {
      p.protocol = protocol->one_of({"TCP", "UDP", "SCTP"});
      if (p.protocol == "SCTP") protocol->fail("SCTP is not supported by pilus (use TCP or UDP)");
    }
    auto [it, added] = seen.port_protocol.emplace(std::pair(p.container_port, p.protocol), v.path());
    if (!added) v.fail("duplicate port {}/{} (also at {})", p.container_port, p.protocol, it->second);
    return p;
  });
}

std::pair<std::string, std::string> read_env_var(const Value& v, std::map<std::string, std::string>& seen) {
  return v.object([&](ObjectReader& r) {
    Value name_value = r.required("name");
    std::string name = name_value.string(env_name_error);
    // Kubernetes lets the last duplicate win, getenv(3) finds the first: refuse to guess.
    auto [it, added] = seen.emplace(name, name_value.path());
    if (!added) name_value.fail("duplicate environment variable \"{}\" (also at {})", name, it->second);
    auto value = r.optional("value");
    return std::pair(std::move(name), value ? value->string(argument_error) : std::string());
  });
}

Container read_container(const Value& v, PortsSeen& ports) {
  return v.object([&](ObjectReader& r) {
    Container c;
    c.name = r.required("name").string(dns_label_error);
    if (auto image = r.optional("image")) c.image = image->string();
    if (auto command = r.optional("command")) {
      c.command = command->string_list(argument_error);
      if (!c.command.empty() && c.command.front().empty()) {
        fail_field(v.where(), index_path(command->path(), 0), "must not be empty (it is the program to run)");
      }
    }
    if (auto args = r.optional("args")) c.args = args->string_list(argument_error);
    if (auto list = r.optional("ports")) {
      for (const Value& port : list->list()) c.ports.push_back(read_port(port, ports));
    }
    if (auto list = r.optional("env")) {
      std::map<std::string, std::string> seen;
      for (const Value& var : list->list()) c.env.push_back(read_env_var(var, seen));
    }
    return c;
  });
}

}  // namespace

Pod parse_pod(const Document& d) {
  return read_document(d, [&](ObjectReader& root) {
    Pod pod;
    Metadata meta = read_metadata(root, Scope::kNamespaced, dns_label_error);
    for (const auto& [key, value] : meta.labels) {
      if (auto error = reserved_label_error(key)) {
        fail_field(root.self().where(), field_path("metadata.labels", key), *error);
      }
    }
    pod.name = std::move(meta.name);
    pod.ns = std::move(meta.ns);
    pod.labels = std::move(meta.labels);
    pod.annotations = std::move(meta.annotations);
    if (auto it = pod.annotations.find(std::string(policy::kProxyVisibilityAnnotation)); it != pod.annotations.end()) {
      try {
        policy::parse_proxy_visibility(it->second);
      } catch (const Error& e) {
        fail_field(root.self().where(), field_path("metadata.annotations", it->first), e.what());
      }
    }

    root.required("spec").object([&](ObjectReader& spec) {
      Value containers = spec.required("containers");
      std::vector<Value> items = containers.list();
      if (items.empty()) containers.fail("must have at least one container");
      PortsSeen ports;
      std::map<std::string, std::string> names;
      for (const Value& item : items) {
        Container c = read_container(item, ports);
        auto [it, added] = names.emplace(c.name, field_path(item.path(), "name"));
        if (!added) fail_field(item.where(), field_path(item.path(), "name"), fmt::format("duplicate container name \"{}\" (also at {})", c.name, it->second));
        pod.containers.push_back(std::move(c));
      }
      // Accepted so Kubernetes manifests apply unchanged; pilus runs a command once
      // and never restarts it, whatever the policy says.
      if (auto policy = spec.optional("restartPolicy")) policy->one_of({"Always", "OnFailure", "Never"});
      if (auto node = spec.optional("nodeName")) pod.node_name = node->string(dns_subdomain_error);
      if (auto sa = spec.optional("serviceAccountName")) pod.service_account = sa->string(dns_subdomain_error);
    });
    return pod;
  });
}

}  // namespace pilus::manifest
