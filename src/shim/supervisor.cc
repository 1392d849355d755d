#include "shim/supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include "base/fs.h"
#include "base/log.h"
#include "shim/exit_record.h"

namespace nfc::shim {
namespace {

using namespace std::chrono_literals;

int64_t UnixNanos() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

constexpr int kConsoleLinesInLog = 30;

// The last 16 KiB of the guest console, without the serial line's carriage returns.
std::string ConsoleTail(const std::string& console_path) {
  std::ifstream in(console_path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  std::streamoff from = size > 16384 ? size - 16384 : 0;
  in.seekg(from);
  std::string tail((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  tail.erase(std::remove(tail.begin(), tail.end(), '\r'), tail.end());
  return tail;
}

// The last `count` lines of the console, for the task's stderr when the guest died on its own.
std::string LastConsoleLines(const std::string& console_path, int count) {
  std::string tail = ConsoleTail(console_path);
  while (!tail.empty() && tail.back() == '\n') tail.pop_back();
  size_t newline = tail.size();  // the one before the oldest line kept so far
  for (int i = 0; i < count; i++) {
    newline = newline == 0 ? std::string::npos : tail.rfind('\n', newline - 1);
    if (newline == std::string::npos) return tail;  // fewer lines than count
  }
  return tail.substr(newline + 1);
}

// The last "Kernel panic" line (or the last few lines) of the guest console, for a message a person can act
// on.
std::string ConsoleHint(const std::string& console_path) {
  std::string tail = ConsoleTail(console_path);
  auto panic = tail.rfind("Kernel panic");
  if (panic != std::string::npos) {
    auto end = tail.find('\n', panic);
    return tail.substr(panic, end == std::string::npos ? std::string::npos : end - panic);
  }
  return "";
}

// utime+stime (ns) and RSS (bytes) of a host process.
bool ProcessCost(int pid, uint64_t* user_ns, uint64_t* system_ns, uint64_t* rss) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto paren = text.rfind(')');
  if (paren == std::string::npos) return false;
  std::istringstream fields(text.substr(paren + 2));
  std::string f;
  unsigned long long utime = 0, stime = 0;
  long long rss_pages = 0;
  // Fields after the command: 3=state ... 14=utime 15=stime ... 24=rss.
  for (int i = 3; i <= 24 && (fields >> f); i++) {
    if (i == 14) utime = std::stoull(f);
    if (i == 15) stime = std::stoull(f);
    if (i == 24) rss_pages = std::stoll(f);
  }
  long hz = sysconf(_SC_CLK_TCK);
  long page = sysconf(_SC_PAGESIZE);
  *user_ns = utime * (1000000000ULL / static_cast<unsigned long long>(hz > 0 ? hz : 100));
  *system_ns = stime * (1000000000ULL / static_cast<unsigned long long>(hz > 0 ? hz : 100));
  *rss = static_cast<uint64_t>(rss_pages > 0 ? rss_pages : 0) * static_cast<uint64_t>(page);
  return true;
}

}  // namespace

Supervisor::Supervisor(ShimConfig config, VmmFactory make_vmm)
    : make_vmm_(std::move(make_vmm)),
      config_(std::move(config)),
      dir_{config_.task_dir},
      stdout_(config_.stdout_path),
      stderr_(config_.stderr_path) {}

Supervisor::~Supervisor() {
  if (guest_thread_.joinable()) guest_thread_.join();
}

int64_t Supervisor::MillisSinceStart() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_)
      .count();
}

Status Supervisor::OpenTaskFiles() {
  auto files = TaskFiles::Open(config_.file_roots, config_.files_max_bytes);
  if (!files.ok()) return std::move(files).error();
  files_ = std::move(files).value();
  return Ok();
}

Status Supervisor::Boot() {
  started_ = std::chrono::steady_clock::now();
  started_unix_nanos_ = UnixNanos();
  Status started = OpenTaskFiles();
  if (started.ok()) started = StartVmm();
  if (!started.ok()) {
    // Nothing runs. Waiters get the error; no exit.json: StartTask reports the failure and removes the dir.
    std::lock_guard<std::mutex> lock(mu_);
    exit_ = ExitResult{1, 0, false, started.error().message(), UnixNanos()};
    vm_exit_ = vmm::VmExit{vmm::VmExit::Kind::kUnknown, -1, "the VMM did not start"};  // nothing to stop
    lifecycle_.Apply(Event::kStartFailed);
    cv_.notify_all();
    return started;
  }
  guest_thread_ = std::thread([this] { GuestLoop(); });
  return Ok();
}

Status Supervisor::StartVmm() {
  const auto cancelled = [] { return Error(ErrorCode::kCancelled, "boot: cancelled by a shutdown request"); };
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (lifecycle_.phase() != Phase::kCreated) return cancelled();
  }
  NFC_ASSIGN_OR_RETURN(std::unique_ptr<vmm::Vmm> vmm, StartWarmOrCold());
  // The record lets DestroyTask find and kill the VMM even if this shim is killed.
  Status recorded = fs::WriteFileDurably(dir_.VmmRecord(), vmm->Record().ToJson(), 0600);
  bool shutdown_requested = false;
  if (recorded.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    shutdown_requested = lifecycle_.phase() != Phase::kCreated;  // a Shutdown came while the VMM started
    if (!shutdown_requested) {
      vmm_ = std::move(vmm);
      vmm_pid_ = vmm_->Record().pid;
      vmm_started_millis_ = MillisSinceStart();
      lifecycle_.Apply(Event::kVmmStarted);
      log::Info("VM started", {{"backend", std::string(vmm::BackendName(config_.backend))},
                               {"vmm_pid", vmm_->Record().pid},
                               {"millis", vmm_started_millis_}});
      return Ok();
    }
  }
  Status killed = vmm->Kill();
  if (!killed.ok()) log::Warn("could not kill the VMM", {{"error", killed.error().message()}});
  (void)vmm->Wait(10s);  // best effort: a VMM that outlives this is found by DestroyTask through vmm.json
  if (shutdown_requested) return cancelled();
  return std::move(recorded).error().Context("record the VMM");
}

bool Supervisor::RecordedLocked() const {
  return lifecycle_.phase() == Phase::kExited || lifecycle_.phase() == Phase::kShutDown;
}

std::shared_ptr<guest::AgentClient> Supervisor::CurrentAgent() {
  std::lock_guard<std::mutex> lock(mu_);
  return agent_;
}

Status Supervisor::Check(Op op) const {
  std::lock_guard<std::mutex> lock(mu_);
  return Allowed(op, lifecycle_.phase());
}

Result<std::shared_ptr<guest::AgentClient>> Supervisor::RequireAgent(Op op) {
  std::lock_guard<std::mutex> lock(mu_);
  NFC_RETURN_IF_ERROR(Allowed(op, lifecycle_.phase()));
  if (!agent_ || !agent_->connected()) {
    return Error::FailedPrecondition(std::string(OpName(op)) + ": the guest is not connected yet (task " +
                                     PhaseName(lifecycle_.phase()) + ")");
  }
  return agent_;
}

void Supervisor::GuestLoop() {
  auto boot_deadline = started_ + std::chrono::milliseconds(config_.boot_timeout_millis);
  bool ever_connected = false;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (vm_exit_ || RecordedLocked()) break;
    }
    auto now = std::chrono::steady_clock::now();
    if (!ever_connected && now > boot_deadline) {
      std::string why = "the guest agent did not answer within " +
                        std::to_string(config_.boot_timeout_millis / 1000) + " s of the VM starting";
      std::string hint = ConsoleHint(config_.vm.console.path);
      if (!hint.empty()) why += " (console: " + hint + ")";
      FailBoot(why);
      break;
    }
    auto fd = vmm_->ConnectGuest(config_.guest_port, 2s);
    if (!fd.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      last_error_ = fd.error().message();
      continue;
    }
    guest::AgentClient::Options options;
    {
      std::lock_guard<std::mutex> lock(mu_);
      options.resume = acked_;
    }
    options.client_name = "nomad-fc-shim";
    auto agent = guest::AgentClient::Connect(std::move(*fd), options);
    if (!agent.ok()) {
      log::Warn("guest handshake failed; retrying", {{"error", agent.error().message()}});
      std::lock_guard<std::mutex> lock(mu_);
      last_error_ = agent.error().message();
      std::this_thread::sleep_for(200ms);
      continue;
    }
    std::shared_ptr<guest::AgentClient> shared(std::move(*agent));
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (boot_id_ != 0 && shared->boot_id() != boot_id_) {
        // -no-reboot / reboot=k end the VMM on a guest reboot, so this means something is badly wrong.
        log::Error("guest boot id changed; the guest rebooted",
                   {{"old", boot_id_}, {"new", shared->boot_id()}});
      }
      boot_id_ = shared->boot_id();
      if (!ever_connected) guest_connected_millis_ = MillisSinceStart();
      agent_ = shared;
    }
    ever_connected = true;
    log::Info("guest connected", {{"boot_id", shared->boot_id()}, {"init", shared->init_version()}});
    if (awaiting_delivery_) {
      Status delivered = DeliverTask(*shared);
      if (!delivered.ok()) {
        {
          // Not a task that ended: the start failed, and the plugin boots the task cold instead.
          std::lock_guard<std::mutex> lock(mu_);
          delivery_failed_ = true;
        }
        FailBoot(delivered.error().message());
        break;
      }
    }
    ServeConnection(shared);
    shared->Close();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (agent_ == shared) agent_.reset();
    }
  }
}

void Supervisor::FailBoot(const std::string& why) {
  log::Error("boot failed", {{"error", why}});
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_error_ = why;
    fatal_error_ = why;
    lifecycle_.Apply(Event::kStopRequested);
  }
  Status killed = vmm_->Kill();
  if (!killed.ok()) log::Error("could not kill the VMM", {{"error", killed.error().message()}});
}

void Supervisor::ServeConnection(const std::shared_ptr<guest::AgentClient>& agent) {
  auto note_status = [this](const guest::GuestStatus& st) {
    std::lock_guard<std::mutex> lock(mu_);
    boot_times_ = st.boot;
    if (lifecycle_.phase() == Phase::kBooting &&
        (st.phase == guest::GuestPhase::kRunning || st.boot.workload_execve_ns)) {
      lifecycle_.Apply(Event::kWorkloadStarted);
      workload_started_millis_ = MillisSinceStart();
      cv_.notify_all();
    }
  };
  note_status(agent->initial_status());
  if (files_) {
    Status copied = files_->Attach(agent);
    if (!copied.ok()) log::Error("task files", {{"error", copied.error().ToString()}});
  }
  std::thread exit_waiter([this, agent] { WaitForExitReport(agent); });
  auto next_status_poll = std::chrono::steady_clock::now();
  for (;;) {
    auto chunk = agent->NextLog(200ms);
    if (!chunk.ok()) break;  // connection lost and drained
    if (chunk->has_value()) {
      const guest::LogChunk& c = **chunk;
      Status written = WriteLog(c);
      if (!written.ok()) {
        log::Error("log write failed", {{"error", written.error().message()}});
        if (written.error().code() == ErrorCode::kCancelled) break;
        // A path that is not a FIFO will not become one: drop the stream's output rather than wedge the
        // guest.
      }
      uint64_t end = c.offset + c.data.size();
      (void)agent->AckLog(c.stream, end);
      std::lock_guard<std::mutex> lock(mu_);
      if (acked_.at(c.stream) < end) acked_.at(c.stream) = end;
      cv_.notify_all();
    }
    // The status poll runs on its own clock, also while output flows: a workload that starts after the
    // connection (it waited for its task files) and prints at once never lets NextLog time out.
    bool starting;
    {
      std::lock_guard<std::mutex> lock(mu_);
      starting = lifecycle_.phase() == Phase::kBooting;
      if (vm_exit_ && !chunk->has_value()) break;
    }
    if (starting && std::chrono::steady_clock::now() >= next_status_poll) {
      next_status_poll = std::chrono::steady_clock::now() + 250ms;
      auto st = agent->QueryStatus();
      if (st.ok()) note_status(*st);
    }
  }
  agent->Close();
  if (files_) files_->Detach();
  exit_waiter.join();
}

Status Supervisor::WriteLog(const guest::LogChunk& chunk) {
  std::lock_guard<std::mutex> write_lock(log_mu_);
  uint64_t acked;
  {
    std::lock_guard<std::mutex> lock(mu_);
    acked = acked_.at(chunk.stream);
  }
  uint64_t end = chunk.offset + chunk.data.size();
  if (end <= acked) return Ok();  // already written before a reconnect
  std::string_view data = chunk.data;
  if (chunk.offset < acked) data.remove_prefix(acked - chunk.offset);
  if (chunk.offset > acked) {
    log::Warn("gap in guest log stream",
              {{"stream", chunk.stream == guest::LogStream::kStdout ? "stdout" : "stderr"},
               {"expected", acked},
               {"got", chunk.offset}});
  }
  FifoWriter& w = chunk.stream == guest::LogStream::kStdout ? stdout_ : stderr_;
  return w.Write(data, abandon_log_writes_);
}

void Supervisor::WaitForExitReport(const std::shared_ptr<guest::AgentClient>& agent) {
  guest::ExitReport reported;
  for (;;) {
    auto r = agent->WaitExit(1s);
    if (r.ok()) {
      reported = *r;
      break;
    }
    if (r.error().code() != ErrorCode::kTimeout) return;  // connection gone; the next connection waits again
    std::lock_guard<std::mutex> lock(mu_);
    if (RecordedLocked() || vm_exit_) return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (RecordedLocked()) {
      (void)
          agent->AckExit();  // recorded during an earlier connection; the guest asks again after a reconnect
      return;
    }
    reported_ = reported;
  }
  // Logs first: the record must not claim the end before the output up to the end is in the FIFOs.
  auto flush_deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(config_.final_log_flush_millis);
  {
    std::unique_lock<std::mutex> lock(mu_);
    bool flushed = cv_.wait_until(lock, flush_deadline, [&] {
      return acked_.stdout_offset >= reported.log_end.stdout_offset &&
             acked_.stderr_offset >= reported.log_end.stderr_offset;
    });
    if (!flushed) {
      log::Warn("logs not fully delivered before the exit was recorded (no reader on the FIFOs?)",
                {{"stdout_acked", acked_.stdout_offset},
                 {"stdout_end", reported.log_end.stdout_offset},
                 {"stderr_acked", acked_.stderr_offset},
                 {"stderr_end", reported.log_end.stderr_offset}});
    }
  }
  ExitResult result = reported;  // without the log offsets
  if (!result.err.empty()) result.err = "workload could not start: " + result.err;
  result.completed_at_unix_nanos = UnixNanos();
  RecordExit(result);
  Status acked = agent->AckExit();
  if (!acked.ok())
    log::Warn("could not acknowledge the exit to the guest", {{"error", acked.error().message()}});
}

void Supervisor::RecordExit(ExitResult result) {
  std::lock_guard<std::mutex> lock(mu_);
  if (RecordedLocked()) return;
  Status s = WriteExitRecord(dir_.ExitRecord(), result);
  if (!s.ok()) log::Error("could not write the exit record", {{"error", s.error().message()}});
  log::Info("task exited", {{"exit_code", result.exit_code},
                            {"signal", result.signal},
                            {"oom_killed", result.oom_killed},
                            {"err", result.err}});
  exit_ = std::move(result);
  lifecycle_.Apply(Event::kExitRecorded);
  cv_.notify_all();
}

ExitResult Supervisor::DescribeUnreportedEnd(const vmm::VmExit& vm_exit) {
  ExitResult r;
  r.completed_at_unix_nanos = UnixNanos();
  std::string vmm_name(vmm::BackendName(config_.backend));
  std::string hint = ConsoleHint(config_.vm.console.path);
  bool stop_requested;
  std::string fatal_error;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Only called before an exit is recorded, so a stop asked by anyone (StopTask, Shutdown, the boot
    // timeout) still shows as the phase.
    stop_requested = lifecycle_.phase() == Phase::kStopping;
    fatal_error = fatal_error_;
  }
  switch (vm_exit.kind) {
    case vmm::VmExit::Kind::kGuestStopped:
      r.exit_code = 1;
      r.err = hint.empty()
                  ? "the VM shut down without reporting the workload's exit (the guest init failed; see "
                    "console.log in the task's state directory)"
                  : "the guest kernel panicked: " + hint;
      break;
    case vmm::VmExit::Kind::kVmmCrashed:
      r.exit_code = 1;
      r.err = "the VMM (" + vmm_name + ") crashed: " + vm_exit.detail;
      if (!hint.empty()) r.err += " (console: " + hint + ")";
      break;
    case vmm::VmExit::Kind::kInternalError:
      r.exit_code = 1;
      r.err = "the VM stopped on a hypervisor internal error: " + vm_exit.detail;
      break;
    case vmm::VmExit::Kind::kUnresponsive:
      r.exit_code = 1;
      r.err = "the VMM (" + vmm_name + ") stopped responding: " + vm_exit.detail;
      break;
    case vmm::VmExit::Kind::kKilled:
    case vmm::VmExit::Kind::kUnknown:
      if (stop_requested) {
        r.exit_code = 128 + SIGKILL;
        r.signal = SIGKILL;
        // A forced stop after the kill timeout is an ordinary outcome of StopTask: reported like a SIGKILLed
        // process. Only a boot that never reached the guest carries a message.
        r.err = fatal_error;
      } else {
        r.exit_code = 1;
        r.err = "the VMM (" + vmm_name + ") was killed from outside the driver: " + vm_exit.detail;
      }
      break;
  }
  return r;
}

void Supervisor::Run() {
  vmm::VmExit vm_exit;
  for (;;) {
    auto r = vmm_->Wait(1s);
    if (r.ok()) {
      vm_exit = *r;
      break;
    }
    if (r.error().code() != ErrorCode::kTimeout) {
      vm_exit.kind = vmm::VmExit::Kind::kUnknown;
      vm_exit.detail = r.error().message();
      break;
    }
  }
  log::Info("VM ended", {{"kind", std::string(vmm::ExitKindName(vm_exit.kind))}, {"detail", vm_exit.detail}});
  {
    std::lock_guard<std::mutex> lock(mu_);
    vm_exit_ = vm_exit;
    cv_.notify_all();
  }
  // The guest may have reported the exit and we are still flushing its logs: give that a moment.
  bool reported;
  {
    std::lock_guard<std::mutex> lock(mu_);
    reported = reported_.has_value();
  }
  if (reported) WaitExitRecorded(std::chrono::milliseconds(config_.final_log_flush_millis + 2000));
  if (!WaitExitRecorded(0ms)) {
    ExitResult result = DescribeUnreportedEnd(vm_exit);
    if (vm_exit.kind != vmm::VmExit::Kind::kKilled && vm_exit.kind != vmm::VmExit::Kind::kUnknown) {
      // The guest (or its VMM) died on its own: its last words belong in the task's log, where `nomad alloc
      // logs -stderr` shows them, not only in console.log on the client.
      std::string lines = "[nomad-firecracker] " + result.err + "; the guest console's last lines:\n" +
                          LastConsoleLines(config_.vm.console.path, kConsoleLinesInLog) + "\n";
      std::lock_guard<std::mutex> write_lock(log_mu_);  // one writer per stream
      Status written = stderr_.Write(lines, abandon_log_writes_);
      if (!written.ok())
        log::Warn("console lines not written to the task's stderr", {{"error", written.error().message()}});
    }
    RecordExit(std::move(result));
  }
  // Nothing more will come from the guest: stop any log write still waiting for a reader, close the FIFOs so
  // logmon sees EOF.
  abandon_log_writes_ = true;
  if (auto agent = CurrentAgent()) agent->Close();
  if (guest_thread_.joinable()) guest_thread_.join();
  stdout_.Close();
  stderr_.Close();
}

bool Supervisor::WaitExitRecorded(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return RecordedLocked(); });
}

bool Supervisor::WaitVmGone(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return vm_exit_.has_value() && RecordedLocked(); });
}

bool Supervisor::WaitForShutdown(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return lifecycle_.phase() == Phase::kShutDown; });
}

Result<ExitResult> Supervisor::Wait(const std::function<bool()>& client_gone) {
  std::unique_lock<std::mutex> lock(mu_);
  NFC_RETURN_IF_ERROR(Allowed(Op::kWait, lifecycle_.phase()));
  while (!RecordedLocked()) {
    if (client_gone()) return Error(ErrorCode::kCancelled, "wait: caller went away");
    cv_.wait_for(lock, 200ms);
  }
  return exit_;
}

Result<ExitResult> Supervisor::Stop(int signal, std::chrono::milliseconds timeout) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    NFC_RETURN_IF_ERROR(Allowed(Op::kStop, lifecycle_.phase()));
    if (RecordedLocked() && vm_exit_) return exit_;
    lifecycle_.Apply(Event::kStopRequested);
  }
  log::Info("stop requested", {{"signal", signal}, {"timeout_ms", static_cast<long long>(timeout.count())}});
  auto agent = CurrentAgent();
  // 1. The signal to the workload, and up to `timeout` for it to exit.
  if (agent && agent->connected()) {
    Status sent = signal > 0 ? agent->Signal(signal) : agent->Shutdown(0, timeout);
    if (!sent.ok()) log::Warn("could not signal the workload", {{"error", sent.error().message()}});
    WaitExitRecorded(timeout + (signal > 0 ? 0ms : 5000ms));
  }
  // 2. Still running: a graceful stop of the VM; nomad-init kills what is left, reports, flushes, powers off.
  if (!WaitExitRecorded(0ms)) {
    agent = CurrentAgent();
    Status asked = agent && agent->connected() ? agent->Shutdown(SIGKILL, 0ms) : vmm_->RequestShutdown();
    if (!asked.ok()) log::Warn("graceful VM stop failed", {{"error", asked.error().message()}});
  }
  // 3. Hard stop if the VM is not gone soon after.
  if (!WaitVmGone(10s)) {
    (void)vmm_->RequestShutdown();
    if (!WaitVmGone(5s)) {
      log::Warn("VM did not stop; killing the VMM");
      (void)vmm_->Kill();
      WaitVmGone(30s);
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!RecordedLocked()) return Error::Internal("stop: the VM did not end");
  return exit_;
}

// The barrier first: a template re-rendered before Nomad's SignalTask must be in the guest before the
// workload's handler runs (task_files.h).
Status Supervisor::Signal(int signal) {
  NFC_ASSIGN_OR_RETURN(auto agent, RequireAgent(Op::kSignal));
  if (files_) NFC_RETURN_IF_ERROR_CTX(files_->Barrier(), "signal: task files not copied into the VM");
  return agent->Signal(signal);
}

Result<ExecResult> Supervisor::Exec(const ExecRequest& request) {
  NFC_ASSIGN_OR_RETURN(auto agent, RequireAgent(Op::kExec));
  if (files_) NFC_RETURN_IF_ERROR_CTX(files_->Barrier(), "exec: task files not copied into the VM");
  guest::ExecOptions options;
  options.argv = request.argv;
  options.tty = request.tty;
  if (request.rows) options.rows = request.rows;
  if (request.cols) options.cols = request.cols;
  NFC_ASSIGN_OR_RETURN(auto session, agent->Exec(options));
  NFC_RETURN_IF_ERROR(session->CloseStdin());
  constexpr size_t kCaptureLimit = 1 << 20;  // per stream; script checks print little
  ExecResult out;
  auto deadline = std::chrono::steady_clock::time_point::max();
  if (request.timeout_millis > 0) {
    deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(request.timeout_millis);
  }
  for (;;) {
    if (std::chrono::steady_clock::now() > deadline) {
      (void)session->Signal(SIGKILL);
      out.result.exit_code = 128 + SIGKILL;
      out.result.signal = SIGKILL;
      out.result.err = "exec timed out after " + std::to_string(request.timeout_millis) + " ms";
      return out;
    }
    auto chunk = session->Read(200ms);
    if (!chunk.ok()) {
      if (chunk.error().code() == ErrorCode::kTimeout) continue;
      return std::move(chunk).error().Context("exec");
    }
    if (!chunk->has_value()) break;
    std::string& dst = (*chunk)->stream == guest::LogStream::kStdout ? out.stdout_data : out.stderr_data;
    size_t room = dst.size() < kCaptureLimit ? kCaptureLimit - dst.size() : 0;
    if ((*chunk)->data.size() > room) out.output_truncated = true;
    dst.append((*chunk)->data, 0, std::min(room, (*chunk)->data.size()));
  }
  NFC_ASSIGN_OR_RETURN(out.result, session->Wait(30s));
  return out;
}

Status Supervisor::ExecStreaming(const ExecRequest& request, ShimExecServer& client) {
  NFC_ASSIGN_OR_RETURN(auto agent, RequireAgent(Op::kExec));
  if (files_) NFC_RETURN_IF_ERROR_CTX(files_->Barrier(), "exec: task files not copied into the VM");
  guest::ExecOptions options;
  options.argv = request.argv;
  options.tty = request.tty;
  if (request.rows) options.rows = request.rows;
  if (request.cols) options.cols = request.cols;
  NFC_ASSIGN_OR_RETURN(std::shared_ptr<guest::GuestExecClient> session, agent->Exec(options));
  std::atomic<bool> client_gone{false};
  std::atomic<bool> done{false};
  // Client -> guest: stdin, close, resize. Ends when the client leaves or the command is done.
  std::thread input([&] {
    while (!done.load()) {
      auto in = client.ReadInput(200);
      if (!in.ok()) {
        client_gone = true;
        if (!done.load()) (void)session->Signal(SIGKILL);  // the user went away: kill the command
        return;
      }
      if (!in->has_value()) continue;
      const auto& i = **in;
      if (i.rows && i.cols) (void)session->Resize(i.rows, i.cols);
      if (!i.stdin_data.empty()) (void)session->Write(i.stdin_data);
      if (i.stdin_close) (void)session->CloseStdin();
    }
  });
  Status status = Ok();
  for (;;) {
    auto chunk = session->Read(200ms);
    if (!chunk.ok()) {
      if (chunk.error().code() == ErrorCode::kTimeout) {
        if (client_gone.load()) break;
        continue;
      }
      status = std::move(chunk).error();
      break;
    }
    if (!chunk->has_value()) break;
    Status w = (*chunk)->stream == guest::LogStream::kStdout ? client.WriteStdout((*chunk)->data)
                                                             : client.WriteStderr((*chunk)->data);
    if (!w.ok()) {
      client_gone = true;
      (void)session->Signal(SIGKILL);
    }
  }
  if (status.ok() && !client_gone.load()) {
    auto r = session->Wait(30s);
    if (r.ok()) {
      (void)client.CloseStdout();
      (void)client.CloseStderr();
      ExitResult result = *r;
      result.completed_at_unix_nanos = UnixNanos();
      (void)client.WriteExit(result);
    } else {
      status = std::move(r).error();
    }
  }
  done = true;
  input.join();
  return status;
}

Result<StatsSample> Supervisor::Stats() {
  NFC_RETURN_IF_ERROR(Check(Op::kStats));  // from booting on, vmm_ is set and never changes
  StatsSample s;
  s.sampled_at_unix_nanos = UnixNanos();
  s.vcpus = config_.vm.vcpus;
  s.vmm_pid = vmm_->Record().pid;
  if (s.vmm_pid > 0) ProcessCost(s.vmm_pid, &s.vmm_cpu_user_nanos, &s.vmm_cpu_system_nanos, &s.vmm_rss_bytes);
  if (auto agent = CurrentAgent(); agent && agent->connected()) {
    auto g = agent->QueryStats();
    if (g.ok()) {
      s.guest_available = true;
      s.guest_cpu_user_nanos = g->cpu_user_usec * 1000;
      s.guest_cpu_system_nanos = g->cpu_system_usec * 1000;
      s.guest_memory_rss_bytes = g->memory_rss_bytes;
      s.guest_memory_cache_bytes = g->memory_cache_bytes;
      s.guest_memory_usage_bytes = g->memory_usage_bytes;
    }
  }
  return s;
}

InspectInfo Supervisor::Inspect() {
  std::lock_guard<std::mutex> lock(mu_);
  InspectInfo i;
  i.state = lifecycle_.phase();  // inspect is allowed in every phase
  i.started_at_unix_nanos = started_unix_nanos_;
  i.exited = RecordedLocked();
  if (i.exited) i.result = exit_;
  i.guest_boot_id = boot_id_ ? std::to_string(boot_id_) : "";
  i.shim_pid = ::getpid();
  i.vmm_pid = vmm_ ? vmm_->Record().pid : 0;
  i.backend = std::string(vmm::BackendName(config_.backend));
  i.stdout_offset = acked_.stdout_offset;
  i.stderr_offset = acked_.stderr_offset;
  i.timings = TimingsLocked();
  i.last_error = last_error_;
  return i;
}

Status Supervisor::Shutdown() {
  bool before_boot;
  {
    std::lock_guard<std::mutex> lock(mu_);
    NFC_RETURN_IF_ERROR(Allowed(Op::kShutdown, lifecycle_.phase()));
    before_boot = lifecycle_.phase() == Phase::kCreated;
    lifecycle_.Apply(Event::kStopRequested);
  }
  // Before the VMM started, the boot sees the request and starts nothing (or kills what it just started).
  if (before_boot) {
    if (!WaitVmGone(30s)) return Error::Timeout("shutdown: the cancelled boot did not end within 30 s");
    return Ok();
  }
  if (!WaitVmGone(0ms)) {
    Status killed = vmm_->Kill();
    if (!killed.ok()) log::Warn("could not kill the VMM", {{"error", killed.error().message()}});
    if (!WaitVmGone(30s)) return Error::Timeout("shutdown: the VMM did not end within 30 s of SIGKILL");
  }
  return Ok();
}

void Supervisor::AfterShutdownReply() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!lifecycle_.Apply(Event::kShutdownAnswered)) {
    log::Warn("shutdown answered in an unexpected phase", {{"phase", PhaseName(lifecycle_.phase())}});
  }
  cv_.notify_all();
}

Result<ShimReady> Supervisor::AwaitStarted() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return lifecycle_.phase() == Phase::kRunning || RecordedLocked(); });
  const bool ended = RecordedLocked();
  if (ended && (boot_id_ == 0 || delivery_failed_)) {
    ErrorCode code = fatal_error_.empty() ? ErrorCode::kInternal : ErrorCode::kTimeout;
    return Error(code, "the VM did not boot: " + exit_.err);
  }
  ShimReady ready;
  auto me = IdentifyProcess(::getpid());
  if (!me.ok()) return std::move(me).error().Context("identify the shim");
  ready.shim = *me;
  ready.vmm_pid = vmm_ ? vmm_->Record().pid : 0;
  ready.started_at_unix_nanos = started_unix_nanos_;
  ready.exited = ended;
  ready.guest_boot_id = boot_id_ ? std::to_string(boot_id_) : "";
  ready.timings = TimingsLocked();
  ready.mode = mode_;
  return ready;
}

StartTimings Supervisor::TimingsLocked() const {
  StartTimings t;
  t.vmm_started_millis = vmm_started_millis_;
  t.guest_connected_millis = guest_connected_millis_;
  t.workload_started_millis = workload_started_millis_;
  t.guest_init_started_millis = static_cast<int64_t>(boot_times_.init_start_ns / 1000000);
  t.guest_workload_exec_millis = static_cast<int64_t>(boot_times_.workload_execve_ns / 1000000);
  t.task_delivered_millis = task_delivered_millis_;
  if (mode_.warm && boot_times_.config_loaded_ns) {
    // The guest's clock stood still while the template was saved: only differences after the delivery count.
    auto since_delivery = [&](uint64_t ns) {
      return ns > boot_times_.config_loaded_ns
                 ? static_cast<int64_t>((ns - boot_times_.config_loaded_ns) / 1000000)
                 : int64_t{0};
    };
    t.guest_delivery_to_root_millis = since_delivery(boot_times_.root_mounted_ns);
    t.guest_delivery_to_exec_millis = since_delivery(boot_times_.workload_execve_ns);
  }
  return t;
}

pid_t Supervisor::VmmPid() const {
  return vmm_pid_.load();
}

}  // namespace nfc::shim
