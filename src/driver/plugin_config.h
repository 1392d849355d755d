// PluginConfig: the agent's `plugin "<binary>" { config { ... } }` block, its schema and its decoder.
// Every option is optional, so `plugin "nomad-driver-firecracker" {}` works. Options are documented in
// docs/configuration.md; the seed driver's spellings (vmlinux_path, rootfs_base_path, containerd_socket) are
// accepted too.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "driver/cty_value.h"
#include "driver/spec.h"
#include "sandbox/uid_pool.h"

namespace nfc::driver {

enum class Backend { kAuto, kFirecracker, kQemu };
std::string_view BackendName(Backend backend);
// "auto" | "firecracker" | "qemu"
Result<Backend> ParseBackend(std::string_view name);

inline constexpr std::string_view kDefaultKernelPath = "/usr/lib/nomad-firecracker/guest/vmlinux";
inline constexpr std::string_view kDefaultInitrdPath = "/usr/lib/nomad-firecracker/guest/initramfs.cpio.gz";
inline constexpr std::string_view kDefaultDataDir = "/var/lib/nomad-firecracker";
inline constexpr std::string_view kDefaultImageCacheSize = "20GiB";
inline constexpr std::string_view kDefaultPullActivityTimeout = "2m";  // as Docker's driver
inline constexpr std::string_view kDefaultBootTimeout = "3m";          // TCG boots take seconds to a minute

struct PluginConfig {
  // Programs: a bare name is looked up in PATH when used.
  std::string firecracker_path = "firecracker";
  std::string jailer_path = "jailer";
  // Firecracker through its jailer: nullopt (unset) = whenever the jailer is installed; false = never (the
  // VMM then runs as root, unconfined); true = always (a start fails when it is missing).
  std::optional<bool> jailer;
  std::string qemu_path = "qemu-system-x86_64";
  std::string kernel_path = std::string(kDefaultKernelPath);
  std::string initrd_path = std::string(kDefaultInitrdPath);
  std::string data_dir = std::string(kDefaultDataDir);
  Backend backend = Backend::kAuto;
  uint64_t image_cache_bytes = 20ULL << 30;      // 0 = no limit
  std::vector<std::string> insecure_registries;  // "host[:port]" reached over plain HTTP / unverified TLS
  std::string ca_file;  // extra PEM CA bundle for registries; empty = system store only
  // A registry transfer that receives no byte for this long is abandoned and retried.
  std::chrono::seconds pull_activity_timeout{120};
  // From the VMM's start to the guest agent answering; past it the start fails (recoverably) and the VM goes.
  std::chrono::milliseconds boot_timeout{180000};
  // Confine each VMM (docs/security.md): its own uid/gid from vm_uids, a chroot, QEMU's seccomp sandbox.
  bool sandbox = true;
  sandbox::UidRange vm_uids{200000, 265535};
  // Where each sandboxed VMM's cgroup goes: <cgroup_parent>/<vm id>, in the unified tree or each v1
  // controller's.
  std::string cgroup_parent = "/nomad-firecracker";
  // The docker driver's `gc { image = true, image_delay = "3m" }`: an image that tasks used is removed from
  // the cache once no task has used it for `image_delay` (a task that needs it again before then reuses it).
  // Images pulled by hand (`image pull`) are left to image_cache_size and `image prune`.
  struct ImageGc {
    bool image = true;
    std::chrono::milliseconds image_delay{180000};
    bool operator==(const ImageGc&) const = default;
  } gc;
  // `egress_guard { enabled, cidrs, gateway }` (docs/networking.md): in group (bridge) mode the guest's IPv4
  // packets to `cidrs` are dropped on its TAP, and with `gateway` also its new TCP connections to the
  // allocation's gateway addresses (the host's side of the bridge).
  struct EgressGuard {
    bool enabled = true;
    std::vector<std::string> cidrs = {"169.254.0.0/16"};
    bool gateway = true;
    bool operator==(const EgressGuard&) const = default;
  } egress_guard;
  // `host_network { enabled, cidr }` (docs/networking.md, "Host mode"): in Nomad's host network mode each VM
  // gets a private link from the host: a /30 of `cidr`, NAT towards everything else, the task's ports
  // forwarded. Off by default: it turns on the host's IPv4 forwarding and adds a firewall table, which an
  // operator opts into. Disabled: such VMs have no network interface.
  struct HostNetwork {
    bool enabled = false;
    std::string cidr = "10.229.0.0/16";
    bool operator==(const HostNetwork&) const = default;
  } host_network;
  // `sidecar_bridge` (docs/networking.md, "Sidecars"): in group mode the namespace and the guest meet on
  // 127.0.0.1 through relays over a private link (Consul Connect), and the allocation's address is split by
  // port with Envoy. Off: the guest owns the whole uplink and processes of the namespace do not reach it.
  bool sidecar_bridge = true;
  // `warm_start` (docs/warm-start.md): start a task by restoring a snapshot of a VM booted once for the same
  // image, kernel, initramfs, VMM, size and device list (a template, built in the background after the first
  // cold start) instead of booting. A template that fails to load, or a restored VM that does not run its
  // task, falls back to a cold boot. The task config's `warm_start` overrides it.
  bool warm_start = true;
  // Warnings for the operator (deprecated or ignored options); the caller logs them.
  std::vector<std::string> warnings;

  bool operator==(const PluginConfig&) const = default;
};

spec::Node PluginConfigSpec();

// Decodes the cty value of the plugin config block (null or an empty object = all defaults).
Result<PluginConfig> DecodePluginConfig(const CtyValue& value);
// Decodes SetConfigRequest.msgpack_config; empty bytes mean "no config block" (all defaults).
Result<PluginConfig> DecodePluginConfigMsgpack(std::string_view msgpack);

// "20GiB", "512MiB", "10GB", "1.5TiB", "1073741824" (bytes), "0" (no limit). Units: B, KB/MB/GB/TB (powers of
// 1000), KiB/MiB/GiB/TiB (powers of 1024), K/M/G/T (= KiB...), case-insensitive.
Result<uint64_t> ParseByteSize(std::string_view text);

// A duration the way Nomad job files write them (Go's time.ParseDuration): "90s", "5m", "1h30m", "1.5h",
// "500ms". Units ms, s, m, h; at least one number with a unit; no sign.
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);

}  // namespace nfc::driver
