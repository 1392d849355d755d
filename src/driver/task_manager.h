// TaskManager: the seam between the driver's gRPC service and the task lifecycle (start, wait, stop, destroy,
// recover, inspect, signal, exec, stats). The RPC layer converts protobuf to these plain structs and maps the
// returned nfc::Error to a gRPC status (kNotFound -> NOT_FOUND, kUnimplemented -> UNIMPLEMENTED, ...), so an
// implementation never sees protobuf. Rules from the Nomad client it must honour (reference sections 2.6, 5):
//   - StopTask/DestroyTask on an unknown id return Ok (the client retries and leaks otherwise);
//   - WaitTask on an unknown id returns an error; cancellation of WaitTask is not a stop request;
//   - RecoverTask uses handle.config.id and handle.driver_state only, and is idempotent;
//   - start failures are errors; transient ones (kUnavailable, kTimeout, kResourceExhausted) reach Nomad as
//     recoverable (its restart policy retries), everything else as final. Never as gRPC UNAVAILABLE, which
//     the client reads as "the plugin crashed" (rpc/status.h does this mapping).
// The task config arrives decoded (TaskConfig): the RPC layer decodes msgpack_driver_config once, at the
// edge. The implementation is task::Manager (src/task/manager.h); cli/task_manager_factory.cc plugs it in.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/exit_result.h"
#include "driver/plugin_config.h"
#include "driver/task_config.h"

namespace nfc::driver {

struct PortMapping {
  std::string label;
  int32_t host_port = 0;  // PortMapping.value
  int32_t task_port = 0;  // PortMapping.to
  std::string host_ip;
};

struct TaskResources {
  int64_t cpu_shares = 0;  // MHz
  int64_t memory_mb = 0;
  int64_t memory_max_mb = 0;  // 0: no oversubscription
  int64_t memory_limit_bytes = 0;
  std::string cpuset_cpus;  // reserved cores, "0,2-3"
  int64_t cpu_quota = 0;    // µs per cpu_period: Nomad's cpu_hard_limit; 0: none
  int64_t cpu_period = 0;   // µs
  double percent_ticks = 0;
  std::vector<PortMapping> ports;
};

struct MountSpec {
  std::string task_path, host_path;
  bool readonly = false;
  std::string propagation_mode, selinux_label, request_name;
};

struct DeviceSpec {
  std::string task_path, host_path, cgroup_permissions;
};

struct NetworkIsolation {
  enum class Mode { kHost, kGroup, kTask, kNone };
  Mode mode = Mode::kHost;
  std::string netns_path;
  std::map<std::string, std::string> labels;
  std::string hostname, address;  // hostsConfig
};

struct DnsSettings {
  std::vector<std::string> servers, searches, options;
};

// Nomad's TaskConfig message: one task (re)start as the client describes it, without its driver config
// (decoded into a TaskConfig by the RPC layer; the handle's echo of the raw bytes stays there too).
struct NomadTask {
  std::string id;  // "<alloc_id>/<task>/<random>", new for every start
  std::string name, alloc_id, job_name, job_id, task_group_name, namespace_name, node_name, node_id;
  std::string user, alloc_dir, stdout_path, stderr_path;
  std::map<std::string, std::string> env, device_env;
  TaskResources resources;
  std::vector<MountSpec> mounts;
  std::vector<DeviceSpec> devices;
  std::optional<NetworkIsolation> network;
  std::optional<DnsSettings> dns;
};

enum class TaskState { kUnknown, kRunning, kExited };

struct TaskHandle {
  int32_t version = 1;  // 0 means a pre-0.9 handle to Nomad; ours start at 1
  NomadTask config;     // echo of the task as received (the client persists it)
  TaskState state = TaskState::kUnknown;
  std::string driver_state;  // opaque bytes: everything a fresh plugin process needs to find the task again
};

struct NetworkOverride {
  std::map<std::string, int32_t> port_map;
  std::string address;
  bool auto_advertise = false;
};

struct StartedTask {
  TaskHandle handle;
  std::optional<NetworkOverride> network;
};

// How a task ended (base/exit_result.h): the same value the guest reported and the shim recorded.
using ExitResult = nfc::ExitResult;

struct TaskInspection {
  std::string id, name;
  TaskState state = TaskState::kUnknown;
  std::chrono::system_clock::time_point started_at{}, completed_at{};
  ExitResult result;
  std::map<std::string, std::string> driver_attributes;
  std::optional<NetworkOverride> network;
};

struct ExecOutput {
  std::string stdout_data, stderr_data;
  ExitResult result;
};

struct TaskStatsSample {
  std::chrono::system_clock::time_point timestamp{};
  // CPU, as Nomad's executor reports it (percent of one core; ticks in MHz).
  double cpu_percent = 0, cpu_user_percent = 0, cpu_system_percent = 0, cpu_total_ticks = 0;
  uint64_t cpu_throttled_periods = 0, cpu_throttled_time = 0;
  std::vector<std::string> cpu_measured;  // subset of "System Mode","User Mode","Total Ticks","Throttled
                                          // Periods","Throttled Time","Percent"
  uint64_t memory_rss = 0, memory_cache = 0, memory_swap = 0, memory_usage = 0, memory_max_usage = 0;
  std::vector<std::string> memory_measured;  // subset of "RSS","Cache","Swap","Usage","Max Usage",...
};

// True once the caller went away (client cancelled the call, or the plugin is stopping).
using CancelledFn = std::function<bool()>;

// One interactive exec session as the RPC layer drives it (`nomad alloc exec`, ExecTaskStreaming, reference
// section 6; driver/rpc/exec_stream.cc). The RPC layer
// reads client frames on one thread (SendStdin/CloseStdin/Resize) while another pulls output with Next();
// Cancel() may come from a third (the user went away: kill the exec'd process). Implementations must allow
// that concurrency.
class RpcExecSession {
 public:
  struct Event {
    enum class Kind { kStdout, kStderr, kStdoutClosed, kStderrClosed, kExited };
    Kind kind = Kind::kStdout;
    std::string data;   // kStdout / kStderr
    ExitResult result;  // kExited: the last event of a session
  };
  virtual ~RpcExecSession() = default;
  virtual Status SendStdin(std::string_view data) = 0;
  virtual Status CloseStdin() = 0;
  virtual Status Resize(unsigned rows, unsigned cols) = 0;
  // Blocks for the next output event; polls `cancelled` while waiting (then returns kCancelled).
  virtual Result<Event> Next(const CancelledFn& cancelled) = 0;
  virtual void Cancel() = 0;
};

class TaskManager {
 public:
  virtual ~TaskManager() = default;

  // SetConfig: must be side-effect free and idempotent (the agent's validation instance calls it twice).
  virtual Status Configure(const PluginConfig& config) = 0;
  // The runtime instance announces itself (Driver.Init, or the first Fingerprint on older Nomad): one-time
  // work such as creating data_dir belongs here, never in Configure.
  virtual Status Init() = 0;

  virtual Result<StartedTask> StartTask(const NomadTask& task, const TaskConfig& config) = 0;
  virtual Status RecoverTask(const TaskHandle& handle) = 0;
  // Blocks until the task exits or `cancelled()`; then returns kCancelled.
  virtual Result<ExitResult> WaitTask(const std::string& task_id, const CancelledFn& cancelled) = 0;
  virtual Status StopTask(const std::string& task_id, std::chrono::milliseconds timeout,
                          const std::string& signal) = 0;
  virtual Status DestroyTask(const std::string& task_id, bool force) = 0;
  virtual Result<TaskInspection> InspectTask(const std::string& task_id) = 0;
  virtual Status SignalTask(const std::string& task_id, const std::string& signal) = 0;
  virtual Result<ExecOutput> ExecTask(const std::string& task_id, const std::vector<std::string>& argv,
                                      std::chrono::milliseconds timeout) = 0;
  // Calls `emit` every `interval` until `cancelled()`, `emit` returns false, or the task is gone.
  virtual Status StreamTaskStats(const std::string& task_id, std::chrono::milliseconds interval,
                                 const std::function<bool(const TaskStatsSample&)>& emit,
                                 const CancelledFn& cancelled) = 0;

  // Starts an interactive exec in the task. rows/cols are 0 until the client sends a terminal size.
  virtual Result<std::unique_ptr<RpcExecSession>> ExecStreaming(const std::string& task_id,
                                                                const std::vector<std::string>& argv,
                                                                bool tty, unsigned rows, unsigned cols) {
    (void)task_id, (void)argv, (void)tty, (void)rows, (void)cols;
    return Error::Unimplemented(
        "ExecTaskStreaming: `nomad alloc exec` is not implemented in this build of the driver yet");
  }

  // What works today: Capabilities must never claim more.
  struct Capabilities {
    bool send_signals = false;
    bool exec = false;
    bool host_networking = true;    // NetworkIsolationMode HOST
    bool group_networking = false;  // bridge/CNI (GROUP)
    bool mounts = false;            // host volumes / CSI
  };
  virtual Capabilities capabilities() const = 0;
};

}  // namespace nfc::driver
