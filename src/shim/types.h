// Value types shared by the task shim and its clients (the plugin's task manager, the CLI): what a task ended
// with, what it costs, what state it is in. Plain structs, no protobuf: the control protocol's wire types
// stay inside src/shim.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/exit_result.h"
#include "shim/lifecycle.h"

namespace nfc::shim {

// How a task ended: the one exit type of the project (base/exit_result.h).
using ExitResult = nfc::ExitResult;

// The wire and older callers name the phase "task state"; shim/lifecycle.h is where it is defined.
using TaskState = Phase;
inline const char* TaskStateName(Phase phase) {
  return PhaseName(phase);
}

// Cumulative counters sampled at one instant; rates come from the difference of two samples.
struct StatsSample {
  int64_t sampled_at_unix_nanos = 0;
  bool guest_available = false;
  uint64_t guest_cpu_user_nanos = 0;
  uint64_t guest_cpu_system_nanos = 0;
  uint64_t guest_memory_rss_bytes = 0;
  uint64_t guest_memory_cache_bytes = 0;
  uint64_t guest_memory_usage_bytes = 0;
  uint64_t guest_memory_swap_bytes = 0;
  uint64_t vmm_cpu_user_nanos = 0;
  uint64_t vmm_cpu_system_nanos = 0;
  uint64_t vmm_rss_bytes = 0;
  int vmm_pid = 0;
  unsigned vcpus = 0;
};

// Where a start spent its time: milliseconds since the shim started (first three), and on the guest's clock
// since its kernel started (last two). The readiness reply and Inspect both carry it.
struct StartTimings {
  int64_t vmm_started_millis = 0;
  int64_t guest_connected_millis = 0;
  int64_t workload_started_millis = 0;
  int64_t guest_init_started_millis = 0;
  int64_t guest_workload_exec_millis = 0;
  // A warm start: the task handed to the restored guest (shim clock), and the guest's own steps after it
  // (guest clock): its root and scratch overlay mounted, the workload exec'd.
  int64_t task_delivered_millis = 0;
  int64_t guest_delivery_to_root_millis = 0;
  int64_t guest_delivery_to_exec_millis = 0;
};

// How the shim started the VM.
struct StartMode {
  bool warm = false;          // restored from a template
  std::string cold_fallback;  // why the VM booted cold although a warm start was asked for; "" otherwise
};

struct InspectInfo {
  Phase state = Phase::kCreated;
  int64_t started_at_unix_nanos = 0;
  bool exited = false;
  ExitResult result;  // valid when exited
  std::string guest_boot_id;
  int shim_pid = 0;
  int vmm_pid = 0;
  std::string backend;
  uint64_t stdout_offset = 0;
  uint64_t stderr_offset = 0;
  StartTimings timings;
  std::string last_error;
};

struct ExecRequest {
  std::vector<std::string> argv;
  bool tty = false;
  unsigned rows = 0;
  unsigned cols = 0;
  int64_t timeout_millis = 0;  // 0: none
};

struct ExecResult {
  std::string stdout_data;
  std::string stderr_data;
  ExitResult result;
  bool output_truncated = false;
};

}  // namespace nfc::shim
