// Validation of Pod manifests.
#include "manifest/pod.h"

#include <algorithm>
#include <optional>

#include "common/capabilities.h"
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

// Kubernetes keeps user and group ids in 0..2^31-1.
int64_t read_id(const Value& v) { return v.integer(0, 2147483647); }

std::vector<std::string> read_capabilities(const Value& v) {
  std::vector<std::string> names;
  std::vector<Value> items = v.list();
  for (size_t i = 0; i < items.size(); i++) {
    std::string name = items[i].string();
    if (name == "ALL") {
      names.push_back(name);
      continue;
    }
    auto cap = capability_number(name);
    if (!cap) items[i].fail("unknown capability \"{}\" (write it as Kubernetes does, e.g. NET_ADMIN)", name);
    names.push_back(capability_name(*cap));
  }
  return names;
}

// The container's securityContext; pod-level fields are read by read_pod_security_context.
SecurityContext read_security_context(const Value& v) {
  return v.object([&](ObjectReader& r) {
    SecurityContext sc;
    if (auto f = r.optional("runAsUser")) sc.run_as_user = read_id(*f);
    if (auto f = r.optional("runAsGroup")) sc.run_as_group = read_id(*f);
    if (auto f = r.optional("runAsNonRoot")) sc.run_as_non_root = f->boolean();
    if (auto f = r.optional("allowPrivilegeEscalation")) sc.allow_privilege_escalation = f->boolean();
    if (auto f = r.optional("privileged")) sc.privileged = f->boolean();
    // Accepted as is: the node's files are read-only to a pod anyway (but /tmp and /var/tmp),
    // and a privileged pod writes them whatever this says.
    if (auto f = r.optional("readOnlyRootFilesystem")) f->boolean();
    if (auto caps = r.optional("capabilities")) {
      caps->object([&](ObjectReader& c) {
        if (auto add = c.optional("add")) sc.capabilities_add = read_capabilities(*add);
        if (auto drop = c.optional("drop")) sc.capabilities_drop = read_capabilities(*drop);
      });
    }
    bool sys_admin = std::count(sc.capabilities_add.begin(), sc.capabilities_add.end(), "SYS_ADMIN") ||
                     std::count(sc.capabilities_add.begin(), sc.capabilities_add.end(), "ALL");
    if (sc.allow_privilege_escalation == false && (sc.privileged || sys_admin))
      v.fail("allowPrivilegeEscalation: false cannot be combined with privileged: true or capabilities.add SYS_ADMIN");
    return sc;
  });
}

SecurityContext read_pod_security_context(const Value& v) {
  return v.object([&](ObjectReader& r) {
    SecurityContext sc;
    if (auto f = r.optional("runAsUser")) sc.run_as_user = read_id(*f);
    if (auto f = r.optional("runAsGroup")) sc.run_as_group = read_id(*f);
    if (auto f = r.optional("runAsNonRoot")) sc.run_as_non_root = f->boolean();
    if (auto f = r.optional("supplementalGroups"))
      for (const Value& g : f->list()) sc.supplemental_groups.push_back(read_id(g));
    return sc;
  });
}

Container read_container(const Value& v, PortsSeen& ports) {
  return v.object([&](ObjectReader& r) {
    Container c;
    c.name = r.required("name").string(dns_label_error);
    if (auto image = r.optional("image")) {
      c.image = image->string();
      image->warn("\"{}\" is not pulled: the command runs on the node's filesystem (pods with images come "
                  "from a container runtime through the CNI plugin pilus-cni)", c.image);
    }
    // kubectl run writes `resources: {}`; limits and requests would need a runtime's cgroups.
    if (auto resources = r.optional("resources")) {
      resources->object([](ObjectReader& res) {
        for (const char* key : {"limits", "requests"})
          if (auto v = res.optional(key)) v->string_map();
      });
      if (!resources->is_empty_structure()) resources->warn("ignored: pilus does not limit a pod's resources");
    }
    if (auto command = r.optional("command")) {
      c.command = command->string_list(argument_error);
      if (!c.command.empty() && c.command.front().empty()) {
        fail_field(v.where(), index_path(command->path(), 0), "must not be empty (it is the program to run)");
      }
    }
    if (auto args = r.optional("args")) c.args = args->string_list(argument_error);
    if (auto dir = r.optional("workingDir")) {
      c.working_dir = dir->string(argument_error);
      if (!c.working_dir.starts_with("/")) dir->fail("must be an absolute path");
    }
    if (auto list = r.optional("ports")) {
      for (const Value& port : list->list()) c.ports.push_back(read_port(port, ports));
    }
    if (auto list = r.optional("env")) {
      std::map<std::string, std::string> seen;
      for (const Value& var : list->list()) c.env.push_back(read_env_var(var, seen));
    }
    if (auto sc = r.optional("securityContext")) c.security_context = read_security_context(*sc);
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
      if (auto sc = spec.optional("securityContext")) pod.security_context = read_pod_security_context(*sc);
      Value containers = spec.required("containers");
      std::vector<Value> items = containers.list();
      if (items.empty()) containers.fail("must have at least one container");
      PortsSeen ports;
      std::map<std::string, std::string> names;
      for (const Value& item : items) {
        Container c = read_container(item, ports);
        auto [it, added] = names.emplace(c.name, field_path(item.path(), "name"));
        if (!added) fail_field(item.where(), field_path(item.path(), "name"), fmt::format("duplicate container name \"{}\" (also at {})", c.name, it->second));
        // Kubernetes refuses to start such a container; pilus refuses the pod up front.
        bool non_root = c.security_context.run_as_non_root.value_or(pod.security_context.run_as_non_root.value_or(false));
        if (non_root && effective_user(pod, c).uid == 0)
          fail_field(item.where(), field_path(item.path(), "securityContext"),
                     "runAsNonRoot is true but the container would run as root (set runAsUser to a non-zero id)");
        pod.containers.push_back(std::move(c));
      }
      // Accepted so Kubernetes manifests apply unchanged; pilus runs a command once
      // and never restarts it, whatever the policy says.
      if (auto policy = spec.optional("restartPolicy")) {
        if (policy->one_of({"Always", "OnFailure", "Never"}) != "Never")
          policy->warn("{}: pilus runs the command once and does not restart it", policy->json().get<std::string>());
      }
      // kubectl run writes `dnsPolicy: ClusterFirst`; pilus runs no cluster DNS, so no policy has an effect.
      if (auto dns = spec.optional("dnsPolicy")) {
        dns->one_of({"ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"});
        dns->warn("ignored: pilus runs no cluster DNS; the pod uses the node's resolver configuration");
      }
      if (auto node = spec.optional("nodeName")) {
        pod.node_name = node->string(dns_subdomain_error);
        node->warn("ignored: the pod runs on the node whose agent applies it");
      }
      if (auto sa = spec.optional("serviceAccountName")) pod.service_account = sa->string(dns_subdomain_error);
      if (auto rc = spec.optional("runtimeClassName")) {
        pod.runtime_class = rc->string(dns_subdomain_error);
        if (pod.runtime_class != kRuntimeClassCni)
          rc->fail("must be \"{}\" (a container runtime runs the pod through pilus-cni) or absent", kRuntimeClassCni);
      }
    });
    return pod;
  });
}

EffectiveUser effective_user(const Pod& pod, const Container& c) {
  const auto& own = c.security_context;
  const auto& shared = pod.security_context;
  EffectiveUser u;
  u.uid = static_cast<uint32_t>(own.run_as_user.value_or(shared.run_as_user.value_or(0)));
  u.gid = static_cast<uint32_t>(own.run_as_group.value_or(shared.run_as_group.value_or(0)));
  for (int64_t g : shared.supplemental_groups) u.supplemental_groups.push_back(static_cast<uint32_t>(g));
  return u;
}

std::vector<int> effective_capabilities(const Container& c) {
  const auto& sc = c.security_context;
  if (sc.privileged) return all_capabilities();
  std::vector<int> caps = default_capabilities();
  auto has = [](const std::vector<std::string>& names, const std::string& n) {
    return std::find(names.begin(), names.end(), n) != names.end();
  };
  if (has(sc.capabilities_add, "ALL")) caps = all_capabilities();
  if (has(sc.capabilities_drop, "ALL")) caps.clear();
  for (const auto& n : sc.capabilities_add)
    if (n != "ALL") caps.push_back(*capability_number(n));
  for (const auto& n : sc.capabilities_drop)
    if (n != "ALL") std::erase(caps, *capability_number(n));
  std::sort(caps.begin(), caps.end());
  caps.erase(std::unique(caps.begin(), caps.end()), caps.end());
  return caps;
}

}  // namespace pilus::manifest
