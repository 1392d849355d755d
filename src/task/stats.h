// Turns two cumulative shim samples (shim::StatsSample) into what Nomad's TaskStats carries (reference 5.10):
//   aggregate = the workload as the guest sees it: CPU percent (100 = one full core) and ticks (MHz consumed:
//               percent/100 × MHz of one host core), user/system split, memory RSS/cache/usage/swap in bytes;
//   per pid   = the VMM process on the host (keyed by its host pid): what the VM costs the host (CPU incl.
//   device
//               emulation, RSS of guest memory actually touched).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "shim/types.h"

namespace nfc::task {

struct Usage {
  double cpu_percent = 0;
  double cpu_user_percent = 0;
  double cpu_system_percent = 0;
  double cpu_total_ticks = 0;
  uint64_t memory_rss = 0;
  uint64_t memory_cache = 0;
  uint64_t memory_usage = 0;
  uint64_t memory_swap = 0;
  bool cpu_measured = false;  // false on the first sample (no rate yet)
  bool memory_measured = false;
};

struct TaskUsage {
  int64_t timestamp_unix_nanos = 0;
  Usage guest;
  Usage vmm;
  int vmm_pid = 0;
};

// `previous` may be empty (first sample: CPU rates are reported as 0 and not marked measured).
TaskUsage ComputeUsage(const std::optional<shim::StatsSample>& previous, const shim::StatsSample& current,
                       double mhz_per_core);

}  // namespace nfc::task
