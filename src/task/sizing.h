// How big a task's VM is.
//
// vCPUs, first that applies:
//   1. the task config's `vcpu_count` (or the seed's `vpu_count`);
//   2. the number of cores Nomad reserved (`resources { cores = N }` arrives as LinuxResources.cpuset_cpus);
//   3. the CPU shares Nomad allocated (`resources { cpu = MHz }`) divided by the MHz of one host core,
//   rounded up; clamped to [1, host cores] for 2-3; an explicit vcpu_count above the host's cores or 32 is an
//   error.
// Memory (MiB), first that applies:
//   1. the task config's `mem_size`;
//   2. Nomad's `memory_max` (memory oversubscription: the VM can grow to the ceiling; the guest balloons
//   nothing);
//   3. Nomad's `memory` (default 300 in Nomad);
//   at least kMinMemoryMiB (a Linux guest with nomad-init does not boot in less); more than the host's
//   physical memory is an error naming the value.
// The VM's memory is all the guest has: kernel and init use about 30-40 MiB of it; size `memory` accordingly.
#pragma once

#include <cstdint>
#include <string>

#include "base/error.h"

namespace nfc::task {

inline constexpr int64_t kMinMemoryMiB = 64;
inline constexpr int kMaxVcpus = 32;  // Firecracker's limit

struct SizingInput {
  int vcpus_config = 0;  // 0: not set
  int64_t memory_config_mib = 0;
  int64_t cpu_shares_mhz = 0;  // AllocatedCpuResources.cpu_shares
  std::string cpuset_cpus;     // LinuxResources.cpuset_cpus, e.g. "0-1,4"
  int64_t memory_mb = 0;
  int64_t memory_max_mb = 0;
};

struct HostFacts {
  int cores = 1;
  double mhz_per_core = 1000;
  int64_t memory_mib = 0;
  static HostFacts Detect();
};

struct VmSize {
  int vcpus = 1;
  int64_t memory_mib = 0;
  std::string vcpus_from;   // "task config vcpu_count", "reserved cores", "cpu shares"
  std::string memory_from;  // "task config mem_size", "memory_max", "memory", "minimum"
};

Result<VmSize> SizeVm(const SizingInput& in, const HostFacts& host);

// Counts the CPUs in a cpuset list ("0-3,8" -> 5). Errors name the text.
Result<int> CountCpuset(const std::string& cpuset);

}  // namespace nfc::task
