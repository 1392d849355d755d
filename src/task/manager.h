// nfc::task::Manager: the task lifecycle behind the driver's gRPC service (driver::TaskManager). One task =
// one state directory (shim/task_dir.h) + one detached nomad-fc-shim that owns the VM; this class only starts
// shims, talks to them over their control sockets, and reads what they leave on disk. It keeps no state that
// a fresh plugin process could not rebuild from a TaskHandle's driver_state (driver_state.h), which is what
// makes RecoverTask work after the plugin is killed: it reattaches, never boots a second VM.
//
// Thread-safety: every method may be called concurrently (several WaitTask callers, a stats stream, exec).
// Long calls (WaitTask, StopTask, exec, stats) hold no lock while they talk to a shim.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "base/env.h"
#include "driver/task_config.h"
#include "driver/task_events.h"
#include "driver/task_manager.h"
#include "image/store.h"
#include "shim/control_client.h"
#include "task/driver_state.h"
#include "task/plan.h"
#include "task/provision.h"
#include "task/shim_launcher.h"
#include "task/warm_start.h"
#include "warm/build_queue.h"
#include "warm/template.h"

namespace nfc::task {

// The Manager's seams to the OS and its collaborators; every unset one is the real thing. Tests inject
// stand-ins (manager_test.cc) to drive the start pipeline and its failures without a VM.
struct ManagerDeps {
  Env* env = nullptr;                      // null: DefaultEnv()
  std::unique_ptr<ImageSource> images;     // null: the image store under data_dir, opened on first use
  std::unique_ptr<ShimLauncher> launcher;  // null: MakeShimLauncher()
  NetworkOps network;                      // default: task/network.h
  CgroupOps cgroups;                       // default: the host's cgroupfs
  std::function<StartHost(const driver::PluginConfig&)> probe_host;  // null: ProbeStartHost
  std::function<std::string()> new_vm_id;                            // null: "nfc-" + 16 random hex digits
  warm::BootFn boot_template;  // null: boot and snapshot a real template VM (warm/template_boot.h)
  // Whether QEMU `binary` runs guests of `kernel` under KVM. Asked once per plugin process and pair (the
  // answer is cached), not by every task's VMM: a probe boots a guest, up to 10 s where nested KVM crawls.
  // null: vmm::qemu::ProbeKvm.
  std::function<bool(const std::string& binary, const std::string& kernel)> probe_kvm;
};

// What this host offers a start: machine facts and the installed VMM binaries.
StartHost ProbeStartHost(const driver::PluginConfig& config);

class Manager final : public driver::TaskManager {
 public:
  explicit Manager(ManagerDeps deps = {});
  ~Manager() override;

  // Task events ("Downloading image", "Booting VM", warnings) go here; set once before tasks start.
  void SetEventSink(std::function<void(driver::TaskEvent)> sink);

  Status Configure(const driver::PluginConfig& config) override;
  Status Init() override;
  // The start pipeline (docs/lifecycle.md "StartTask"): plan -> provision -> launch -> commit. The CLI's
  // `run` and the RPC handler both come here with the task config already decoded.
  Result<driver::StartedTask> StartTask(const driver::NomadTask& task,
                                        const driver::TaskConfig& config) override;
  Status RecoverTask(const driver::TaskHandle& handle) override;
  Result<driver::ExitResult> WaitTask(const std::string& task_id,
                                      const driver::CancelledFn& cancelled) override;
  Status StopTask(const std::string& task_id, std::chrono::milliseconds timeout,
                  const std::string& signal) override;
  Status DestroyTask(const std::string& task_id, bool force) override;
  Result<driver::TaskInspection> InspectTask(const std::string& task_id) override;
  Status SignalTask(const std::string& task_id, const std::string& signal) override;
  Result<driver::ExecOutput> ExecTask(const std::string& task_id, const std::vector<std::string>& argv,
                                      std::chrono::milliseconds timeout) override;
  Status StreamTaskStats(const std::string& task_id, std::chrono::milliseconds interval,
                         const std::function<bool(const driver::TaskStatsSample&)>& emit,
                         const driver::CancelledFn& cancelled) override;
  Capabilities capabilities() const override;

  // Interactive exec (ExecTaskStreaming), relayed through the task's shim. tty rows/cols may be 0.
  Result<std::unique_ptr<driver::RpcExecSession>> ExecStreaming(const std::string& task_id,
                                                                const std::vector<std::string>& argv,
                                                                bool tty, unsigned rows,
                                                                unsigned cols) override;

  // Start-up timings of a task (for `run` and the benchmark): milliseconds.
  struct StartTimings {
    int64_t plan_millis = 0;     // plan: host facts; a process's first QEMU start also probes KVM
    int64_t image_millis = 0;    // resolve (pull/convert or cache hit)
    int64_t prepare_millis = 0;  // state dir, scratch disk, task initramfs
    int64_t shim_millis = 0;     // shim spawned until the VMM runs
    int64_t boot_millis = 0;     // VMM running until the guest reports the workload started
    int64_t total_millis = 0;
    int64_t guest_init_millis = 0;      // guest clock: kernel start -> nomad-init start
    int64_t guest_workload_millis = 0;  // guest clock: kernel start -> workload execve
    bool warm = false;                  // restored from a warm-start template
    shim::StartTimings shim;            // the shim's own clock (and the guest's, after a warm delivery)
  };
  std::optional<StartTimings> Timings(const std::string& task_id) const;
  // The driver state of a known task (CLI `run` keeps it to clean up).
  std::optional<DriverState> State(const std::string& task_id) const;

  // Warm start (docs/warm-start.md): blocks until the template builds queued by cold starts are done (the
  // CLI's `run` waits so that its next run starts warm); how many builds ended (for tests).
  void WaitForTemplateBuilds();
  // Builds, ahead of any start, the template a start of this task would restore (the CLI's
  // `run --template-only`): the start's plan and provisioning, undone afterwards, then the build in this
  // thread. An existing template is returned as it is; a task whose start could not be warm is an error
  // saying why.
  Result<warm::Template> BuildTemplate(const driver::NomadTask& task, const driver::TaskConfig& config);
  size_t TemplateBuildsPending() const;
  size_t TemplateBuildsFinished() const;

 private:
  struct Task;
  std::shared_ptr<Task> Find(const std::string& task_id) const;
  void Emit(const driver::NomadTask& t, std::string message,
            std::map<std::string, std::string> annotations = {});
  Result<driver::PluginConfig> ConfigForNewTask(const std::string& task_id) const;
  Status CheckArtifacts(const VmPlan& plan);
  // PlanVm with this host's facts and the KVM answer, and the guest artifacts checked.
  Result<VmPlan> PlanChecked(const driver::NomadTask& t, const driver::TaskConfig& tc,
                             const driver::PluginConfig& config);
  Result<Provisioned> Provision(StartTransaction& txn, const driver::NomadTask& t, const VmPlan& vm,
                                const driver::PluginConfig& config, uint64_t scratch_bytes);
  Result<std::vector<volume::Disk>> PrepareVolumes(const driver::NomadTask& t, const VmPlan& vm);
  driver::StartedTask Register(const driver::NomadTask& t, const DriverState& state, StartTimings timings);
  StartDeps StartDepsFor();
  // A warm start whose restored VM never ran its task: the template (removed) and why.
  struct WarmFailure {
    std::string key, reason;
  };
  // One pass of the start pipeline. With warm_failed, a restored VM that fails to run the task sets it (the
  // attempt is rolled back by then) and StartTask boots the task cold instead.
  Result<driver::StartedTask> StartOnce(const driver::NomadTask& t, const driver::TaskConfig& tc,
                                        std::optional<WarmFailure>* warm_failed);
  warm::TemplateStore Templates(const driver::PluginConfig& config) const;
  // The warm-start decision for a provisioned start; when warm, `boot` becomes a restore (manager_warm.cc).
  WarmStartPlan PrepareWarmStart(const driver::NomadTask& t, const driver::TaskConfig& tc, const VmPlan& vm,
                                 const Provisioned& p, const driver::PluginConfig& config, BootPlan& boot);
  // After the shim answered: events for a warm start or its fallback, a failed template removed, and the
  // template of an eligible cold start queued for building.
  void AfterStart(const driver::NomadTask& t, const WarmStartPlan& warm, const shim::ShimReady& ready,
                  const driver::PluginConfig& config);
  Result<shim::ExitResult> ResultFromDisk(const Task& task) const;
  // How a task whose shim is gone ended: its exit record, else an error (and its VM is stopped).
  ExitResult ResultOfGoneShim(const Task& task);
  Status RemoveTaskResources(const DriverState& state);
  // Removes tasks whose StartTask was interrupted by the death of the plugin running it (see StartRecord).
  void RemoveInterruptedStarts(const std::string& data_dir);

  ManagerDeps deps_;
  mutable std::mutex mu_;
  driver::PluginConfig config_;
  bool configured_ = false;
  std::function<void(driver::TaskEvent)> sink_;
  std::map<std::string, std::shared_ptr<Task>> tasks_;
  std::thread sweeper_;  // removes interrupted starts once per runtime instance (Init); joined on destruction
  // The image GC (plugin config `gc { image }`): started by Init, stopped by the destructor.
  void RunImageGc(driver::PluginConfig::ImageGc gc);
  void CollectStaleTemplates();
  std::thread image_gc_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  // Last member: destroyed first, so a build under way ends before the rest of the Manager goes.
  warm::BuildQueue template_builds_;
};

}  // namespace nfc::task
