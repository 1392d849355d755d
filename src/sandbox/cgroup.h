// VmCgroup: the cgroup a sandboxed VMM runs in, with limits from its VM's size (docs/security.md), on cgroup
// v2 (one unified tree) or v1 (one tree per controller: memory, cpu, pids), whichever the host runs.
//
// Layout: <parent>/<name> in the unified tree, or in each of the v1 controllers' trees; <parent> is the
// plugin's `cgroup_parent` ("/nomad-firecracker" by default), created when missing. On v2 the controllers are
// enabled in cgroup.subtree_control from the root down to <parent> (as Firecracker's jailer does); a parent
// that holds processes itself cannot delegate them (the "no internal processes" rule) and the error says so.
// The VMM joins before it execs (SpawnOptions::join_cgroups, its cgroup.procs files), so everything it
// allocates is charged here. Remove() deletes the cgroup once its processes are gone.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"

namespace nfc::sandbox {

enum class CgroupVersion { kV1, kV2 };

struct CgroupLimits {
  uint64_t memory_bytes = 0;  // memory.max / memory.limit_in_bytes
  uint64_t cpu_shares =
      0;  // Nomad's CPU in MHz, as the docker driver sets cpu_shares (v2: converted to weight)
  uint64_t pids_max = 0;  // pids.max
  // A hard CPU limit (Nomad's cpu_hard_limit: LinuxResources.cpu_quota per cpu_period, in µs): v1
  // cpu.cfs_quota_us / cpu.cfs_period_us, v2 cpu.max "<quota> <period>". 0: none.
  uint64_t cpu_quota_us = 0;
  uint64_t cpu_period_us = 0;
  // Nomad's reserved cores (`resources { cores }`, LinuxResources.cpuset_cpus: "0,2-3"): cpuset.cpus, so the
  // VMM's threads (vCPUs included) run on those cores only. Empty: no cpuset cgroup at all.
  std::string cpuset_cpus;
  // Memory oversubscription (`memory` below `memory_max`): the VM is sized to memory_max and memory_bytes
  // bounds it; this is the reservation the host reclaims down to under pressure, v1
  // memory.soft_limit_in_bytes, v2 memory.low (as the docker driver maps Nomad's `memory` then). 0: none.
  uint64_t memory_soft_bytes = 0;
};

// The limits for a VMM running a VM of `memory_mib` and `vcpus` with Nomad's `cpu_mhz`: the guest's memory
// plus the VMM's own (its code, device emulation, and under TCG the translation buffer); pids for the VMM's
// threads (vCPUs, I/O workers), never a fork bomb (QEMU's seccomp filter denies fork too).
CgroupLimits LimitsForVm(uint64_t memory_mib, uint32_t vcpus, uint64_t cpu_mhz);
inline constexpr uint64_t kVmmMemoryOverheadMib = 320;

// cpu.shares (v1, 2..262144) to cpu.weight (v2, 1..10000), the conversion runc and systemd use.
uint64_t CpuWeightFromShares(uint64_t shares);

// The control files that set `limits` and their values, in the version's names and in the order to write
// them: v1 memory.limit_in_bytes, memory.soft_limit_in_bytes, cpu.shares, cpu.cfs_period_us,
// cpu.cfs_quota_us, pids.max, cpuset.cpus; v2 memory.max, memory.low, cpu.weight, cpu.max, pids.max,
// cpuset.cpus. A zero (empty) limit is left out (no limit). The controller is the file name's part before the
// first '.'. (v1's cpuset.mems, which must be set before a task may join, is copied from the parent by
// VmCgroup::Create, and by Firecracker's jailer.)
std::vector<std::pair<std::string, std::string>> LimitFiles(CgroupVersion version,
                                                            const CgroupLimits& limits);

struct CgroupHost {
  CgroupVersion version = CgroupVersion::kV2;
  std::string root = "/sys/fs/cgroup";  // v1: the directory holding one mount per controller
  bool v1_cpuset = false;               // v1: a cpuset hierarchy is mounted at <root>/cpuset
  // Which the host runs: v2 when <root>/cgroup.controllers exists (a unified mount), v1 when <root>/memory,
  // <root>/cpu (or cpu,cpuacct) and <root>/pids are mounted controllers. Errors name what is missing.
  static Result<CgroupHost> Detect(const std::string& root = "/sys/fs/cgroup");
};

class VmCgroup {
 public:
  // Creates <parent>/<name> with `limits`. `parent` is absolute ("/nomad-firecracker"); `name` one path
  // element.
  static Result<VmCgroup> Create(const CgroupHost& host, const std::string& parent, const std::string& name,
                                 const CgroupLimits& limits);
  // The same cgroup, to remove it later (after a restart, from the recorded parent and name).
  static VmCgroup Existing(const CgroupHost& host, const std::string& parent, const std::string& name);

  // The cgroup.procs file of each directory: a process that writes its pid into each has joined.
  std::vector<std::string> ProcsFiles() const;
  // The cgroup's directories (one on v2, one per controller on v1).
  const std::vector<std::string>& dirs() const { return dirs_; }
  // Removes the directories; kFailedPrecondition naming the cgroup while processes remain. Gone is fine.
  Status Remove() const;

 private:
  std::vector<std::string> dirs_;
};

}  // namespace nfc::sandbox
