// Supervisor: the heart of `nomad-fc-shim`. Owns one task's VM (through vmm::Vmm), its connection to the
// guest agent (guest::AgentClient), the pump from the guest's log streams into Nomad's FIFOs, and the exit
// record; answers the control socket (ControlHandler).
//
// Lifecycle, in the shim's main thread: Boot() starts the VMM; Run() blocks until the VM is gone and the exit
// is recorded. Meanwhile one guest thread (re)connects to the agent, pumps logs and waits for the workload's
// exit; control connections run on their own threads. The task's phase is one shim::Lifecycle
// (shim/lifecycle.h): every event goes through its table, and every control operation is checked against the
// phase here, at the top of each ControlHandler method, under mu_ ("signal: task is exited").
//
// Exactly-once logs: a chunk is acknowledged to the guest only after every byte of it was accepted by the
// FIFO (FifoWriter::Write). After a reconnect the guest resends from the acknowledged offsets; bytes below
// them are skipped. The exit is recorded only after the logs up to the guest's end offsets were written
// (bounded by final_log_flush_millis when nobody reads), and acknowledged to the guest only after the record
// is durable.
//
// How a task ends, and what WaitTask then says:
//   guest reports the workload's exit     -> its exit code / signal / OOM flag, err empty
//   guest reports it could not start it    -> exit code 125-127 and err "workload could not start: ..."
//   VM ends without a report               -> err names why: guest kernel panic (line from the console),
//                                             VMM crash (its exit status), hypervisor internal error, or the
//                                             driver's forced stop (then signal 9, exit code 137)
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "guest/agent_client.h"
#include "shim/control_server.h"
#include "shim/fifo_writer.h"
#include "shim/lifecycle.h"
#include "shim/readiness.h"
#include "shim/shim_config.h"
#include "shim/task_dir.h"
#include "shim/task_files.h"
#include "vmm/vmm.h"

namespace nfc::shim {

class Supervisor final : public ControlHandler {
 public:
  // Makes the (not yet started) VMM. The seam for tests, which pass a fake.
  using VmmFactory = std::function<Result<std::unique_ptr<vmm::Vmm>>(vmm::Backend, vmm::VmConfig)>;

  explicit Supervisor(ShimConfig config, VmmFactory make_vmm = vmm::CreateVmm);
  ~Supervisor() override;

  // Starts the VMM and the guest thread. On error nothing is left running.
  Status Boot();
  // Blocks until the VM has ended and the exit result is durable.
  void Run();
  // Blocks until the workload runs or the task ended (a short job: still started). An end before the guest
  // ever answered is the boot's failure, with a code: kTimeout for a boot timeout (recoverable for Nomad),
  // kInternal otherwise. For the readiness reply (readiness.h).
  Result<ShimReady> AwaitStarted();
  // The VMM's pid, 0 before it runs: the shim's orphan reaper must leave that one to the VMM's waiter.
  pid_t VmmPid() const;
  // True once a Shutdown request was answered (the shim should exit now).
  bool WaitForShutdown(std::chrono::milliseconds timeout);

  // ControlHandler
  Result<ExitResult> Wait(const std::function<bool()>& client_gone) override;
  Result<ExitResult> Stop(int signal, std::chrono::milliseconds timeout) override;
  Status Signal(int signal) override;
  Result<ExecResult> Exec(const ExecRequest& request) override;
  Status ExecStreaming(const ExecRequest& request, ShimExecServer& session) override;
  Result<StatsSample> Stats() override;
  InspectInfo Inspect() override;
  Status Shutdown() override;
  void AfterShutdownReply() override;

 private:
  Status OpenTaskFiles();  // files_ from config_.file_roots
  Status StartVmm();
  // The VMM started: restored from the warm-start template when there is one and it loads, else booted.
  Result<std::unique_ptr<vmm::Vmm>> StartWarmOrCold();
  // Hands a restored template its task (warm start).
  Status DeliverTask(guest::AgentClient& agent);
  // Ends a VM that will never run its task (boot timeout, a failed delivery): the start fails with `why`.
  void FailBoot(const std::string& why);
  void GuestLoop();
  // One connection's life: returns when the connection is lost or the task is over.
  void ServeConnection(const std::shared_ptr<guest::AgentClient>& agent);
  void WaitForExitReport(const std::shared_ptr<guest::AgentClient>& agent);
  Status WriteLog(const guest::LogChunk& chunk);
  void RecordExit(ExitResult result);
  ExitResult DescribeUnreportedEnd(const vmm::VmExit& vm_exit);
  std::shared_ptr<guest::AgentClient> CurrentAgent();
  // Allowed(op, phase) under mu_.
  Status Check(Op op) const;
  // Check(op), and the guest connected.
  Result<std::shared_ptr<guest::AgentClient>> RequireAgent(Op op);
  // The exit is recorded (phase exited or later). Requires mu_.
  bool RecordedLocked() const;
  StartTimings TimingsLocked() const;
  // Waits until the exit is recorded or the timeout passes; true if recorded.
  bool WaitExitRecorded(std::chrono::milliseconds timeout);
  bool WaitVmGone(std::chrono::milliseconds timeout);
  int64_t MillisSinceStart() const;

  VmmFactory make_vmm_;
  ShimConfig config_;
  TaskDir dir_;
  // Set under mu_ when the VMM started (kBooting), never changed afterwards: code that checked the phase
  // under mu_ (booting or later) may then use it without the lock.
  std::unique_ptr<vmm::Vmm> vmm_;
  std::atomic<pid_t> vmm_pid_{0};  // read by the shim's signal thread
  FifoWriter stdout_;
  FifoWriter stderr_;
  std::atomic<bool> abandon_log_writes_{false};  // set when the final flush ran out of time
  std::thread guest_thread_;
  std::chrono::steady_clock::time_point started_;
  int64_t started_unix_nanos_ = 0;

  // Everything below up to log_mu_ is guarded by mu_. Lock order: log_mu_, then mu_.
  mutable std::mutex mu_;
  std::condition_variable cv_;  // notified on every phase change and log acknowledgement
  Lifecycle lifecycle_;
  ExitResult exit_;                            // the recorded result, from kExited on
  std::optional<guest::ExitReport> reported_;  // what the guest said, before the record is written
  std::shared_ptr<guest::AgentClient> agent_;
  guest::LogOffsets acked_;
  uint64_t boot_id_ = 0;
  std::optional<vmm::VmExit> vm_exit_;  // set once the VMM process is gone (not a phase: see lifecycle.h)
  std::string last_error_;
  std::string fatal_error_;  // why the shim itself ended the VM (boot timeout)
  int64_t vmm_started_millis_ = 0;
  int64_t guest_connected_millis_ = 0;
  int64_t workload_started_millis_ = 0;
  guest::BootTimes boot_times_;
  // Set by StartVmm before the guest thread starts; then the guest thread's alone.
  StartMode mode_;
  bool awaiting_delivery_ = false;
  bool delivery_failed_ = false;  // the restored guest did not take its task: the start failed (under mu_)
  int64_t task_delivered_millis_ = 0;  // guarded by mu_
  std::unique_ptr<TaskFiles> files_;   // Nomad's task directories; null when the task has none
  std::mutex log_mu_;  // one pump writes at a time (a reconnect can briefly overlap the old pump)
};

}  // namespace nfc::shim
