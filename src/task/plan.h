// Planning a start: every policy decision StartTask makes, as pure functions (no I/O, no clock, no
// randomness: whatever varies is passed in), so each is unit-tested without a VM (plan_test.cc).
//
// Two stages, because two facts only exist once provisioning has begun:
//   PlanVm   (Nomad task, task config, plugin config, host facts)        -> VmPlan
//            size, backend and VMM binary, guest kernel/initramfs, pull options, the workload's env, argv,
//            working dir and user overrides, boot args. Runs before anything is downloaded or created, so a
//            bad job fails fast and leaves nothing behind.
//   PlanBoot (VmPlan, Nomad task, image, attached network, task dir, ...) -> BootPlan (the TaskSpec
//   validated;
//            the VmConfig is validated where it is written, since that check looks at the task dir)
//            the guest's TaskSpec, the shim's ShimConfig (with its VmConfig) and the DriverState recorded
//            once the workload runs: the image's config (entrypoint, user, stop signal) and the allocation's
//            addresses are only known after the pull and the TAP attach.
//
// Precedence rules (docs/lifecycle.md):
//   - the task config's `user` wins over Nomad's task `user`, which wins over the image's USER;
//   - `command` replaces the image's CMD[0] and is followed by `args`; `args` alone replace the image's CMD;
//   a
//     task `entrypoint` replaces the image's ENTRYPOINT (guest::ResolveArgv applies the OCI rules in the
//     guest);
//   - env: image env < task config `env` < Nomad's task env (task/env.h);
//   - the task config's `backend`, `kernel`, `initrd` win over the plugin's; backend "auto" is Firecracker
//   when
//     it is installed, else QEMU.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "driver/plugin_config.h"
#include "driver/task_config.h"
#include "driver/task_manager.h"
#include "guest/task_spec.h"
#include "image/store.h"
#include "sandbox/cgroup.h"
#include "shim/shim_config.h"
#include "shim/task_dir.h"
#include "task/driver_state.h"
#include "task/network.h"
#include "task/sizing.h"
#include "vmm/vmm.h"
#include "volume/volume.h"

namespace nfc::task {

// What the host offers, probed by the caller (task/host_probe in Manager; literal values in tests).
struct StartHost {
  HostFacts machine;
  std::optional<std::string> firecracker_binary;  // resolved path, when installed
  std::optional<std::string> qemu_binary;
  std::optional<std::string> jailer_binary;
};

struct VmPlan {
  VmSize size;
  vmm::Backend backend = vmm::Backend::kQemu;
  std::string vmm_binary;  // resolved path, or the configured name when it is not installed (the VMM's start
                           // then fails with an error naming it)
  std::string kernel_path;
  // QEMU: whether KVM runs guests here, as the plugin's probe found (once per QEMU binary and kernel, see
  // ManagerDeps::probe_kvm); nullopt: the VMM probes itself.
  std::optional<bool> kvm_usable;
  std::string base_initrd_path;
  std::vector<std::string> kernel_args;  // the task config's boot_args, split into words
  std::string image;                     // the reference, as given
  image::PullOptions pull;
  guest::ProcessOverrides process;  // env overrides, entrypoint/args, working dir, user
  std::string hostname;             // the task config's, else the group network's, else the task's name
  std::optional<driver::DnsSettings> dns_override;  // the task config's dns_servers/_search_domains/_options
  std::map<std::string, std::string> labels;        // the task config's labels
  std::string planned_tap;       // the TAP provisioning will create (group or host networking), "" for none
  NetworkPolicy network_policy;  // the plugin's egress_guard and host_network, for that TAP
  uint64_t files_max_bytes = driver::kDefaultTaskDirMaxBytes;  // per task directory (task_dir_max_size)
  // Nomad's volume mounts, then its devices, each a disk of the VM after the root and scratch disks; mounts
  // ordered so that one inside another comes after it.
  std::vector<volume::Request> volumes;
  uint64_t volume_image_bytes = volume::kDefaultImageBytes;  // a directory volume's new image (volume_size)
  int64_t boot_timeout_millis = 180000;                      // the plugin's boot_timeout
  // Run the VMM confined (docs/security.md) as a uid of vm_uids, in the cgroup <cgroup_parent>/<vm id>: QEMU
  // with the plugin's `sandbox`, Firecracker through its jailer (which then makes the cgroup itself).
  bool sandbox = false;
  std::string jailer_binary;  // resolved; empty: Firecracker runs without its jailer (or the VMM is QEMU)
  sandbox::UidRange vm_uids;
  std::string cgroup_parent;            // the plugin's cgroup_parent
  sandbox::CgroupLimits cgroup_limits;  // from the VM's size and Nomad's CPU
};

// The guest's /secrets is a tmpfs of this size (Nomad's own secrets dir is a 1 MiB tmpfs).
inline constexpr const char* kSecretsTmpfsSize = "16m";

// The scratch disk's (apparent) size: the task config's scratch_size, else 2 GiB, sparse: the overlay's
// upper layer.
uint64_t ScratchBytes(const driver::TaskConfig& config);

Result<VmPlan> PlanVm(const driver::NomadTask& task, const driver::TaskConfig& config,
                      const driver::PluginConfig& plugin, const StartHost& host);

// What provisioning produced that the boot plan depends on.
struct Provisioned {
  image::ImageHandle image;
  TaskNetwork network;
  std::string host_resolv_conf;  // the host's /etc/resolv.conf text (group mode DNS fallback)
  shim::TaskDir dir;
  std::string vm_id;                      // unique per start ("nfc-<hex>")
  std::vector<volume::Disk> volumes;      // one per VmPlan::volumes, in that order
  std::optional<uint32_t> vm_uid;         // the VMM's uid and gid when sandboxed (a lease of the uid pool)
  std::vector<std::string> cgroup_procs;  // the sandboxed QEMU's cgroup (<cgroup_parent>/<vm_id>) to join
  std::string jail_dir;                   // Firecracker's chroot through the jailer (vmm::JailerDir)
};

struct BootPlan {
  guest::TaskSpec spec;
  shim::ShimConfig shim;
  DriverState state;  // complete except the shim's identity and start time, known after launch
};

Result<BootPlan> PlanBoot(const VmPlan& vm, const driver::NomadTask& task, const driver::TaskConfig& config,
                          const Provisioned& provisioned);

}  // namespace nfc::task
