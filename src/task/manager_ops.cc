// Manager: everything after StartTask/RecoverTask (wait, stop, destroy, inspect, signal, exec, stats).
#include <unistd.h>

#include <thread>

#include "base/log.h"
#include "sandbox/uid_pool.h"
#include "shim/exit_record.h"
#include "task/manager.h"
#include "task/manager_task.h"
#include "task/network.h"
#include "task/signals.h"
#include "task/sizing.h"
#include "task/stats.h"
#include "vmm/vmm.h"

namespace nfc::task {

using namespace std::chrono_literals;

namespace {

bool ShimGone(const Error& e) {
  // Connection refused / no socket file / closed before answering: the shim has exited (or is exiting).
  return e.code() == ErrorCode::kUnavailable || e.code() == ErrorCode::kNotFound ||
         e.sys_errno() == ECONNREFUSED || e.sys_errno() == ENOENT;
}

Error NotFound(const std::string& id) {
  return Error::NotFound("task " + id + " not found");
}

}  // namespace

Result<driver::ExitResult> Manager::WaitTask(const std::string& task_id,
                                             const driver::CancelledFn& cancelled) {
  auto task = Find(task_id);
  if (!task) return NotFound(task_id);
  {
    std::lock_guard<std::mutex> lock(task->mu);
    if (task->exit) return *task->exit;
  }
  auto r = task->client.Wait(cancelled);
  ExitResult result;
  if (r.ok()) {
    result = *r;
  } else if (r.error().code() == ErrorCode::kCancelled) {
    return std::move(r).error();
  } else if (ShimGone(r.error()) || !task->state.shim.IsAlive()) {
    result = ResultOfGoneShim(*task);  // an error result fails the task in Nomad with its message
  } else {
    return std::move(r).error().Context("wait for task " + task_id);
  }
  std::lock_guard<std::mutex> lock(task->mu);
  task->exit = result;
  return result;
}

Status Manager::StopTask(const std::string& task_id, std::chrono::milliseconds timeout,
                         const std::string& signal) {
  auto task = Find(task_id);
  if (!task) return Ok();  // reference 2.6: unknown ids are not an error for StopTask
  int sig = 0;  // empty: the shim's graceful stop with the image's stop signal (STOPSIGNAL, else SIGTERM)
  if (!signal.empty()) {
    NFC_ASSIGN_OR_RETURN(sig, ParseSignal(signal));
  }
  {
    std::lock_guard<std::mutex> lock(task->mu);
    if (task->exit) return Ok();
  }
  auto r = task->client.Stop(sig, timeout);
  if (r.ok()) {
    std::lock_guard<std::mutex> lock(task->mu);
    task->exit = *r;
    return Ok();
  }
  if (ShimGone(r.error()) || !task->state.shim.IsAlive()) return Ok();  // already ended
  return std::move(r).error().Context("stop task " + task_id);
}

Status Manager::RemoveTaskResources(const DriverState& state) {
  Status first = Ok();
  auto keep = [&](Status s) {
    if (!s.ok() && first.ok()) first = std::move(s);
  };
  if (!state.task_dir.empty()) {
    // A shim still there (destroy without a prior stop, or it hangs), and a VMM orphaned by a killed shim.
    std::optional<ProcessIdentity> shim;
    if (state.shim.pid > 1) shim = state.shim;
    keep(deps_.launcher->Stop(shim::TaskDir{state.task_dir}, shim));
  }
  // A jailed Firecracker no record names (its shim died before writing vmm.json): found by the jailer's pid
  // file.
  if (!state.jail_dir.empty()) keep(vmm::KillJailedVmm(state.jail_dir));
  keep(deps_.network.detach(state.netns_path, state.tap_name, state.task_dir));
  if (!state.cgroup.name.empty()) keep(deps_.cgroups.remove(state.cgroup.parent, state.cgroup.name));
  if (state.vm_uid != 0 && !state.task_dir.empty()) {
    shim::TaskDir dir{state.task_dir};
    keep(sandbox::UidPool(shim::VmUidPoolDir(shim::DataDirOf(dir)), {}).Release(state.vm_uid, dir.root));
  }
  if (!state.jail_dir.empty()) keep(deps_.env->RemoveTree(state.jail_dir));
  if (!state.task_dir.empty()) keep(deps_.env->RemoveTree(state.task_dir));
  if (!state.image_digest.empty()) keep(deps_.images->ReleaseLease(state.image_digest, state.task_id));
  return first;
}

Status Manager::DestroyTask(const std::string& task_id, bool force) {
  auto task = Find(task_id);
  if (!task) return Ok();  // idempotent; unknown ids are OK (reference 2.6)
  bool exited;
  {
    std::lock_guard<std::mutex> lock(task->mu);
    exited = task->exit.has_value();
  }
  if (!exited && task->state.shim.IsAlive()) {
    auto info = task->client.Inspect();
    if (info.ok() && !info->exited) {
      if (!force) {
        return Error::FailedPrecondition("task " + task_id +
                                         " is still running; stop it first or destroy with force");
      }
    }
  }
  NFC_RETURN_IF_ERROR_CTX(RemoveTaskResources(task->state), "destroy task " + task_id);
  std::lock_guard<std::mutex> lock(mu_);
  tasks_.erase(task_id);
  return Ok();
}

Result<driver::TaskInspection> Manager::InspectTask(const std::string& task_id) {
  auto task = Find(task_id);
  if (!task) return NotFound(task_id);
  driver::TaskInspection out;
  out.id = task_id;
  out.name = task->state.task_name;
  out.started_at = task->started_at;
  out.driver_attributes = {{"backend", task->state.backend},
                           {"vcpus", std::to_string(task->state.vcpus)},
                           {"memory_mib", std::to_string(task->state.memory_mib)},
                           {"image", task->state.image_reference},
                           {"image_digest", task->state.image_digest},
                           {"shim_pid", std::to_string(task->state.shim.pid)}};
  // The task config's labels, as the docker driver's show on its container: "label.<name>".
  if (auto labels = task->state.config.find("labels");
      labels != task->state.config.end() && labels->is_object()) {
    for (const auto& [name, value] : labels->items()) {
      if (value.is_string()) out.driver_attributes["label." + name] = value.get<std::string>();
    }
  }
  std::optional<ExitResult> exit;
  {
    std::lock_guard<std::mutex> lock(task->mu);
    exit = task->exit;
  }
  if (!exit) {
    auto info = task->client.Inspect();
    if (info.ok()) {
      out.driver_attributes["guest_boot_id"] = info->guest_boot_id;
      out.driver_attributes["vmm_pid"] = std::to_string(info->vmm_pid);
      if (info->exited) exit = info->result;
      std::lock_guard<std::mutex> lock(task->mu);
      task->last_phase = info->state;
      if (info->exited) task->exit = info->result;  // final: later calls need not ask
    } else {
      auto disk = ResultFromDisk(*task);
      if (disk.ok())
        exit = *disk;
      else
        exit = ExitResult{1, 0, false, disk.error().message(), 0};
    }
  }
  if (exit) {
    out.state = driver::TaskState::kExited;
    out.result = *exit;
    out.completed_at =
        std::chrono::system_clock::time_point(std::chrono::nanoseconds(exit->completed_at_unix_nanos));
  } else {
    out.state = driver::TaskState::kRunning;
  }
  return out;
}

Status Manager::SignalTask(const std::string& task_id, const std::string& signal) {
  auto task = Find(task_id);
  if (!task) return NotFound(task_id);
  NFC_ASSIGN_OR_RETURN(int sig, ParseSignal(signal));
  Status allowed = task->Check(shim::Op::kSignal);  // the shim's own answer, without asking it
  NFC_RETURN_IF_ERROR_CTX(allowed.ok() ? task->client.Signal(sig) : allowed, "signal task " + task_id);
  return Ok();
}

Result<driver::ExecOutput> Manager::ExecTask(const std::string& task_id, const std::vector<std::string>& argv,
                                             std::chrono::milliseconds timeout) {
  auto task = Find(task_id);
  if (!task) return NotFound(task_id);
  if (argv.empty()) return Error::InvalidArgument("exec: empty command");
  NFC_RETURN_IF_ERROR_CTX(task->Check(shim::Op::kExec), "exec in task " + task_id);
  shim::ExecRequest req;
  req.argv = argv;
  req.timeout_millis = timeout.count();
  auto r = task->client.Exec(req);
  if (!r.ok()) return std::move(r).error().Context("exec in task " + task_id);
  driver::ExecOutput out;
  out.stdout_data = std::move(r->stdout_data);
  out.stderr_data = std::move(r->stderr_data);
  out.result = std::move(r->result);
  return out;
}

namespace {

// driver::RpcExecSession over the shim's exec stream.
class RelayedExecSession final : public driver::RpcExecSession {
 public:
  explicit RelayedExecSession(std::unique_ptr<shim::ShimExecClient> stream) : stream_(std::move(stream)) {}
  Status SendStdin(std::string_view data) override { return stream_->SendStdin(data); }
  Status CloseStdin() override { return stream_->CloseStdin(); }
  Status Resize(unsigned rows, unsigned cols) override { return stream_->Resize(rows, cols); }
  Result<Event> Next(const driver::CancelledFn& cancelled) override {
    NFC_ASSIGN_OR_RETURN(auto ev, stream_->Next(cancelled));
    Event out;
    using K = shim::ShimExecClient::Event::Kind;
    switch (ev.kind) {
      case K::kStdout:
        out.kind = Event::Kind::kStdout;
        break;
      case K::kStderr:
        out.kind = Event::Kind::kStderr;
        break;
      case K::kStdoutClosed:
        out.kind = Event::Kind::kStdoutClosed;
        break;
      case K::kStderrClosed:
        out.kind = Event::Kind::kStderrClosed;
        break;
      case K::kExited:
        out.kind = Event::Kind::kExited;
        break;
    }
    out.data = std::move(ev.data);
    out.result = std::move(ev.result);
    return out;
  }
  void Cancel() override { stream_->Cancel(); }

 private:
  std::unique_ptr<shim::ShimExecClient> stream_;
};

}  // namespace

Result<std::unique_ptr<driver::RpcExecSession>> Manager::ExecStreaming(const std::string& task_id,
                                                                       const std::vector<std::string>& argv,
                                                                       bool tty, unsigned rows,
                                                                       unsigned cols) {
  auto task = Find(task_id);
  if (!task) return NotFound(task_id);
  if (argv.empty()) return Error::InvalidArgument("exec: empty command");
  NFC_RETURN_IF_ERROR_CTX(task->Check(shim::Op::kExec), "exec in task " + task_id);
  shim::ExecRequest req;
  req.argv = argv;
  req.tty = tty;
  req.rows = rows;
  req.cols = cols;
  auto stream = task->client.ExecStreaming(req);
  if (!stream.ok()) return std::move(stream).error().Context("exec in task " + task_id);
  return std::unique_ptr<driver::RpcExecSession>(std::make_unique<RelayedExecSession>(std::move(*stream)));
}

Status Manager::StreamTaskStats(const std::string& task_id, std::chrono::milliseconds interval,
                                const std::function<bool(const driver::TaskStatsSample&)>& emit,
                                const driver::CancelledFn& cancelled) {
  auto task = Find(task_id);
  if (!task) return NotFound(task_id);
  if (interval < 100ms) interval = 100ms;
  double mhz = HostFacts::Detect().mhz_per_core;
  std::optional<shim::StatsSample> previous;
  while (!cancelled()) {
    {
      std::lock_guard<std::mutex> lock(task->mu);
      if (task->exit) return Ok();
    }
    auto sample = task->client.Stats();
    if (!sample.ok()) {
      if (ShimGone(sample.error())) return Ok();  // the task ended: end the stream, the client re-opens
      return std::move(sample).error().Context("stats of task " + task_id);
    }
    TaskUsage u = ComputeUsage(previous, *sample, mhz);
    previous = *sample;
    driver::TaskStatsSample out;
    out.timestamp = std::chrono::system_clock::time_point(std::chrono::nanoseconds(u.timestamp_unix_nanos));
    out.cpu_percent = u.guest.cpu_percent;
    out.cpu_user_percent = u.guest.cpu_user_percent;
    out.cpu_system_percent = u.guest.cpu_system_percent;
    out.cpu_total_ticks = u.guest.cpu_total_ticks;
    if (u.guest.cpu_measured) out.cpu_measured = {"System Mode", "User Mode", "Total Ticks", "Percent"};
    out.memory_rss = u.guest.memory_rss;
    out.memory_cache = u.guest.memory_cache;
    out.memory_usage = u.guest.memory_usage;
    out.memory_swap = u.guest.memory_swap;
    if (u.guest.memory_measured) out.memory_measured = {"RSS", "Cache", "Usage"};
    if (!emit(out)) return Ok();
    auto until = std::chrono::steady_clock::now() + interval;
    while (std::chrono::steady_clock::now() < until && !cancelled()) std::this_thread::sleep_for(50ms);
  }
  return Ok();
}

driver::TaskManager::Capabilities Manager::capabilities() const {
  Capabilities c;
  c.send_signals = true;
  c.exec = true;
  c.host_networking = true;
  c.group_networking = true;  // the VM takes over the allocation namespace's uplink (task/network.h)
  c.mounts = true;            // volumes and devices as disks of the VM (volume/volume.h)
  return c;
}

}  // namespace nfc::task
