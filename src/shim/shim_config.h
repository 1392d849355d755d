// ShimConfig: what the plugin tells a new task shim (`shim.json` in the task dir, written before the shim
// starts, read once by the shim). Everything the shim needs to boot and supervise the VM without asking the
// plugin again: the VM description, where the task's output goes, how to reach the guest agent, time limits.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "network/relay.h"
#include "vmm/vmm.h"

namespace nfc::shim {

inline constexpr int kShimConfigVersion = 1;

// One of Nomad's task directories on the host, mirrored into the guest under the same name
// (shim/task_files.h).
struct HostFileRoot {
  std::string name;  // "local", "secrets", "alloc": the guest's TaskSpec names the same roots
  std::string path;  // the host directory
  bool two_way = false;
  std::vector<std::string> exclude;  // names directly below path that are not mirrored
};

// A warm start (docs/warm-start.md): the VM is `vm` restored from a template's snapshot, started with the
// template's initramfs, and then handed its task. When the restore fails the shim boots `vm` cold instead
// (its initrd is the task's own), and says so in its readiness reply.
struct WarmStart {
  vmm::SnapshotFiles snapshot;  // the template's files, linked into the task dir
  std::string initrd_path;      // the template's initramfs, linked likewise
  std::string template_key;
  std::string spec_json;  // the guest's TaskSpec, delivered after the restore
  // The template's network interfaces' MACs, in vm.nics order: a restored device keeps the one it was saved
  // with (the guest gives itself the task's, see guest::InterfaceConfig::current_mac), and no MTU.
  std::vector<std::string> nic_macs;
};

struct ShimConfig {
  std::string task_id;
  std::string task_dir;
  vmm::Backend backend = vmm::Backend::kQemu;
  vmm::VmConfig vm;
  std::string stdout_path;  // Nomad's FIFO (or /dev/null)
  std::string stderr_path;
  uint32_t guest_port = 1024;            // vsock port of the agent (ignored on virtio-serial)
  int64_t boot_timeout_millis = 180000;  // VMM start -> guest agent answering
  int64_t final_log_flush_millis =
      10000;  // after the exit, how long to wait for a log reader before giving up
  std::string log_level = "info";
  std::vector<HostFileRoot> file_roots;
  uint64_t files_max_bytes = uint64_t{1} << 30;  // per root
  // Ports the shim relays in the allocation's namespace (it runs there) while the task lives: the sidecar
  // bridge (docs/networking.md, "Sidecars").
  std::vector<network::Forward> relays;
  std::optional<WarmStart> warm_start;

  std::string ToJson() const;
  static Result<ShimConfig> FromJson(std::string_view json);
};

}  // namespace nfc::shim
