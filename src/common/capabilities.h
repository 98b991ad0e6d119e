// Linux capability names as Kubernetes writes them (NET_ADMIN, or CAP_NET_ADMIN as
// containerd also accepts) and the default set a pod's container gets.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pilus {

// The capability's number, or nullopt for a name the kernel headers do not know.
std::optional<int> capability_number(std::string_view name);
// "NET_ADMIN" for CAP_NET_ADMIN.
std::string capability_name(int cap);
// Every capability this kernel has (0..CAP_LAST_CAP).
std::vector<int> all_capabilities();
// Docker's/containerd's default set without NET_RAW and MKNOD (pilus has no device
// cgroup and pods see the node's filesystem): CHOWN DAC_OVERRIDE FSETID FOWNER SETGID
// SETUID SETFCAP SETPCAP NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE.
std::vector<int> default_capabilities();

}  // namespace pilus
