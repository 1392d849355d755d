// nomad-fc-shim: the per-task supervisor (see supervisor.h, docs/lifecycle.md).
//
//   nomad-fc-shim start <task_dir>   detach (fork + setsid), boot the VM, and once the workload runs (or the
//                                    start failed) print the readiness reply (shim/readiness.h) on stdout and
//                                    exit; the detached shim lives on
//   nomad-fc-shim run <task_dir>     the same in the foreground (debugging)
//
// Process hygiene, as a container shim does it: the shim never inherits the plugin's stdio (the plugin spawns
// it with /dev/null and a pipe for the reply), runs in its own session, logs to <task_dir>/shim.log, and is a
// child subreaper, so whatever its VMM leaves behind is re-parented to it (not to the host's init) and reaped
// here. Signals are blocked in every thread and taken by one (ShimSignals below): SIGTERM/SIGINT stop the
// task the way StopTask does (the exit is recorded), SIGHUP/SIGQUIT are ignored, SIGCHLD reaps orphans;
// SIGPIPE is ignored (log readers and control clients come and go).
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "base/fs.h"
#include "base/log.h"
#include "base/process.h"
#include "shim/control_server.h"
#include "shim/readiness.h"
#include "shim/supervisor.h"
#include "shim/task_dir.h"
#include "shim/wire.h"

namespace {

using namespace nfc;
using namespace nfc::shim;
using namespace std::chrono_literals;

constexpr size_t kShimConfigLimit = 4 << 20;

// The one signal thread of the shim.
class ShimSignals {
 public:
  // Blocks the handled signals in the calling thread; every thread created afterwards inherits the mask
  // (Spawn gives the VMM an empty one).
  static sigset_t Block() {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT}) sigaddset(&set, sig);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    return set;
  }

  ShimSignals(sigset_t set, Supervisor* supervisor) : set_(set), supervisor_(supervisor) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~ShimSignals() {
    stop_ = true;
    thread_.join();
  }

 private:
  void Loop() {
    bool stopping = false;
    while (!stop_) {
      struct timespec slice = {0, 500L * 1000 * 1000};
      int sig = sigtimedwait(&set_, nullptr, &slice);
      if (sig == SIGTERM || sig == SIGINT) {
        if (!stopping) {
          stopping = true;
          log::Info("stopping the task on a signal to the shim", {{"signal", sig}});
          auto stopped = supervisor_->Stop(0, 5s);
          if (!stopped.ok()) log::Warn("stop on signal failed", {{"error", stopped.error().message()}});
        }
      } else if (sig == SIGHUP || sig == SIGQUIT) {
        log::Info("ignoring a signal to the shim", {{"signal", sig}});
      }
      ReapOrphans();  // also on timeouts: a SIGCHLD that arrived while the VMM's own waiter held it
    }
  }

  // Reaps exited processes re-parented to this subreaper, never the VMM: its waiter (src/vmm) owns that
  // status.
  void ReapOrphans() {
    pid_t vmm = supervisor_->VmmPid();
    // Not while the VMM starts: its starter may be a jailer whose exit, and whose Firecracker, the VMM's
    // own waiter must see (src/vmm/firecracker/jail.h). Orphans that end meanwhile are reaped afterwards.
    if (vmm <= 0) return;
    for (;;) {
      siginfo_t info = {};
      if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) return;
      if (info.si_pid == vmm) return;
      if (waitpid(info.si_pid, nullptr, WNOHANG) <= 0) return;
      log::Debug("reaped an orphaned process", {{"pid", info.si_pid}});
    }
  }

  sigset_t set_;
  Supervisor* supervisor_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

void Reply(int fd, const std::string& line) {
  if (fd < 0) return;
  // Best effort by design: a starter that went away (the plugin died) cannot be told, and the start record
  // plus shim.pid let the next plugin instance clean up.
  for (size_t off = 0; off < line.size();) {
    ssize_t n = ::write(fd, line.data() + off, line.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

Status RecordShimPid(const TaskDir& dir) {
  NFC_ASSIGN_OR_RETURN(ProcessIdentity me, IdentifyProcess(::getpid()));
  return fs::WriteFileDurably(dir.ShimPid(),
                              std::to_string(me.pid) + " " + std::to_string(me.start_time) + "\n", 0600);
}

// Everything before the VM exists; on error nothing runs.
Result<ShimConfig> Prepare(const std::string& task_dir) {
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return Error::Errno("prctl(PR_SET_CHILD_SUBREAPER)");
  if (::chdir(task_dir.c_str()) != 0) return Error::Errno("chdir " + task_dir);
  TaskDir dir{task_dir};
  int log_fd = ::open(dir.ShimLog().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
  NFC_ASSIGN_OR_RETURN(std::string text, fs::ReadFile(dir.ShimConfig(), kShimConfigLimit));
  NFC_ASSIGN_OR_RETURN(ShimConfig config, ShimConfig::FromJson(text));
  log::Configure(log_fd >= 0 ? log_fd : 2, log::Format::kText,
                 log::ParseLevel(config.log_level, log::Level::kInfo), "shim");
  log::Info("shim starting", {{"task_id", config.task_id}, {"pid", ::getpid()}});
  // Before the VM: whoever cleans up after a failed or interrupted start finds the shim through it.
  NFC_RETURN_IF_ERROR_CTX(RecordShimPid(dir), "record the shim's pid");
  return config;
}

// Runs the shim in this process. The readiness reply goes to ready_fd.
int Serve(const std::string& task_dir, int ready_fd, const sigset_t& signals) {
  auto config = Prepare(task_dir);
  if (!config.ok()) {
    Reply(ready_fd, EncodeNotReady(config.error()));
    return 1;
  }
  // Relative: the task dir may be deeper than a unix socket path allows.
  auto listener = ListenUnix("control.sock");
  if (!listener.ok()) {
    Reply(ready_fd, EncodeNotReady(listener.error()));
    return 1;
  }
  // The sidecar bridge's ports in the allocation's namespace, before the VM: a port in use fails the start.
  std::unique_ptr<network::RelayThread> relays;
  if (!config->relays.empty()) {
    auto started = network::RelayThread::Start(config->relays);
    if (!started.ok()) {
      Reply(ready_fd, EncodeNotReady(std::move(started).error().Context("sidecar port relay")));
      return 1;
    }
    relays = std::move(*started);
    log::Info("sidecar port relay started", {{"forwards", config->relays.size()}});
  }
  Supervisor supervisor(std::move(*config));
  ControlServer server(std::move(*listener), &supervisor);
  std::thread serve([&] { server.Serve(); });
  ShimSignals signal_thread(signals, &supervisor);

  Status booted = supervisor.Boot();
  if (booted.ok()) {
    // Run() reaps the VMM and records how it ended; AwaitStarted() returns on that record too, so a VM that
    // ends before its workload starts (a boot timeout, a guest that fails) must already be watched.
    std::thread runner([&] { supervisor.Run(); });
    auto ready = supervisor.AwaitStarted();
    Reply(ready_fd, ready.ok() ? EncodeReady(*ready) : EncodeNotReady(ready.error()));
    if (ready_fd >= 0) ::close(ready_fd);
    runner.join();
    // The exit is durable in exit.json; linger briefly so waiting callers get their answers, or until
    // destroyed.
    supervisor.WaitForShutdown(3s);
  } else {
    log::Error("boot failed", {{"error", booted.error().message()}});
    Reply(ready_fd, EncodeNotReady(booted.error()));
  }
  server.Close();
  serve.join();
  ::unlink("control.sock");
  log::Info("shim exiting");
  return booted.ok() ? 0 : 1;
}

int Usage() {
  std::fprintf(
      stderr,
      "usage: nomad-fc-shim start|run <task_dir>\n"
      "The per-task supervisor of nomad-driver-firecracker; started by the driver, not by people.\n");
  return 2;
}

// `start`: the detached shim in a child; this process relays its reply and exits.
int StartDetached(const std::string& task_dir, const sigset_t& signals) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) {
    std::fputs(EncodeNotReady(Error::Errno("pipe")).c_str(), stdout);
    return 1;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    std::fputs(EncodeNotReady(Error::Errno("fork")).c_str(), stdout);
    return 1;
  }
  if (pid == 0) {
    // The detached shim: own session, stdio on /dev/null, parent (the plugin's short-lived helper) gone soon.
    ::close(pipefd[0]);
    ::setsid();
    int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd >= 0) {
      for (int fd = 0; fd <= 2; fd++) ::dup2(null_fd, fd);
      if (null_fd > 2) ::close(null_fd);
    }
    ::_exit(Serve(task_dir, pipefd[1], signals));
  }
  ::close(pipefd[1]);
  std::string line;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(pipefd[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  if (line.empty()) {
    line = EncodeNotReady(
        Error::Internal("the shim exited before it was ready (see shim.log in " + task_dir + ")"));
  }
  std::fputs(line.c_str(), stdout);
  std::fflush(stdout);
  return DecodeReadiness(line).ok() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return Usage();
  std::string mode = argv[1];
  std::string task_dir = argv[2];
  if (task_dir.empty() || task_dir[0] != '/') return Usage();
  // One malloc arena for all threads (glibc gives each thread that allocates its own heap otherwise), and
  // free memory returned to the kernel early: the shim lives for the whole task under a 2 MiB RSS budget, and
  // its threads mostly wait.
  ::mallopt(M_ARENA_MAX, 1);
  ::mallopt(M_TRIM_THRESHOLD, 64 * 1024);
  ::mallopt(M_MMAP_THRESHOLD, 64 * 1024);  // fixed: no dynamic growth that keeps big freed blocks in the heap
  ::signal(SIGPIPE, SIG_IGN);
  ::umask(0077);
  sigset_t signals = ShimSignals::Block();
  if (mode == "run") return Serve(task_dir, STDOUT_FILENO, signals);
  if (mode != "start") return Usage();
  return StartDetached(task_dir, signals);
}
