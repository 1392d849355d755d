// Bring-up of the guest before the workload starts: the image root (read-only ext4 device, or a directory)
// under an overlay whose upper layer lives on the scratch disk (or a tmpfs), system filesystems, switch_root,
// identity files (/etc/hostname, /etc/hosts, /etc/resolv.conf), interfaces and routes, extra mounts, rlimits,
// and the workload's cgroup. Each step's error names the step and its input.
#pragma once

#include <string>

#include "base/error.h"
#include "guest/task_spec.h"
#include "init/common/mounts.h"

namespace nfc::init::guest {

using ::nfc::guest::TaskSpec;

struct BootEnvironment {
  bool from_initramfs = false;  // PID 1 of a real (virtual) machine on its initramfs
  DevMode dev_mode = DevMode::kTmpfs;
};

// Mounts the root (image + scratch + overlay), system filesystems and task mounts, writes the identity files
// and switches into the new root. Afterwards "/" is the workload's root.
Status SetUpRoot(const TaskSpec& spec, const BootEnvironment& env);

// Hostname, loopback, the configured interfaces, addresses and routes.
Status SetUpNetwork(const TaskSpec& spec);

// The spec's network.forwards (TCP and UDP each), relayed by a child process started here that lives until
// the VM ends (network/relay.h). Nothing to do without forwards; a port that cannot be bound is an error.
Status StartForwards(const TaskSpec& spec);

Status ApplyRlimits(const TaskSpec& spec);

// Creates /sys/fs/cgroup/workload with the cpu, memory and pids controllers enabled; returns an open fd of
// its cgroup.procs (O_WRONLY|O_CLOEXEC), or an error (the workload then runs in init's cgroup).
Result<int> CreateWorkloadCgroup();
inline constexpr const char* kWorkloadCgroup = "/sys/fs/cgroup/workload";

// Polls for a block device node that devtmpfs creates asynchronously after the driver probed it.
Status WaitForDevice(const std::string& path, int timeout_ms);

}  // namespace nfc::init::guest
