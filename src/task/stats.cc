#include "task/stats.h"

namespace nfc::task {
namespace {

double Percent(uint64_t before, uint64_t after, int64_t wall_nanos) {
  if (wall_nanos <= 0 || after < before) return 0;  // counters reset (should not happen): report nothing
  return static_cast<double>(after - before) * 100.0 / static_cast<double>(wall_nanos);
}

}  // namespace

TaskUsage ComputeUsage(const std::optional<shim::StatsSample>& previous, const shim::StatsSample& current,
                       double mhz_per_core) {
  TaskUsage u;
  u.timestamp_unix_nanos = current.sampled_at_unix_nanos;
  u.vmm_pid = current.vmm_pid;
  if (current.guest_available) {
    u.guest.memory_rss = current.guest_memory_rss_bytes;
    u.guest.memory_cache = current.guest_memory_cache_bytes;
    u.guest.memory_usage = current.guest_memory_usage_bytes;
    u.guest.memory_swap = current.guest_memory_swap_bytes;
    u.guest.memory_measured = true;
  }
  u.vmm.memory_rss = current.vmm_rss_bytes;
  u.vmm.memory_usage = current.vmm_rss_bytes;
  u.vmm.memory_measured = current.vmm_pid > 0;
  if (previous && previous->sampled_at_unix_nanos < current.sampled_at_unix_nanos) {
    int64_t wall = current.sampled_at_unix_nanos - previous->sampled_at_unix_nanos;
    if (current.guest_available && previous->guest_available) {
      u.guest.cpu_user_percent = Percent(previous->guest_cpu_user_nanos, current.guest_cpu_user_nanos, wall);
      u.guest.cpu_system_percent =
          Percent(previous->guest_cpu_system_nanos, current.guest_cpu_system_nanos, wall);
      u.guest.cpu_percent = u.guest.cpu_user_percent + u.guest.cpu_system_percent;
      u.guest.cpu_total_ticks = u.guest.cpu_percent / 100.0 * mhz_per_core;
      u.guest.cpu_measured = true;
    }
    if (current.vmm_pid > 0 && current.vmm_pid == previous->vmm_pid) {
      u.vmm.cpu_user_percent = Percent(previous->vmm_cpu_user_nanos, current.vmm_cpu_user_nanos, wall);
      u.vmm.cpu_system_percent = Percent(previous->vmm_cpu_system_nanos, current.vmm_cpu_system_nanos, wall);
      u.vmm.cpu_percent = u.vmm.cpu_user_percent + u.vmm.cpu_system_percent;
      u.vmm.cpu_total_ticks = u.vmm.cpu_percent / 100.0 * mhz_per_core;
      u.vmm.cpu_measured = true;
    }
  }
  return u;
}

}  // namespace nfc::task
