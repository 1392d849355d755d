#include "init/guest/guest_init.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "base/log.h"
#include "base/process.h"
#include "init/common/modules.h"
#include "init/common/mounts.h"
#include "init/common/shutdown.h"
#include "init/common/signals.h"
#include "init/common/system.h"
#include "init/guest/launcher.h"

namespace nfc::init::guest {

namespace {

// Debian's cloud kernel builds these as modules (docs/guest-init.md); this order is used only when the
// initramfs carries no modules.dep.
const std::vector<std::string> kModuleOrder = {"virtio_ring",
                                               "virtio",
                                               "virtio_mmio",
                                               "virtio_pci_legacy_dev",
                                               "virtio_pci_modern_dev",
                                               "virtio_pci",
                                               "virtio_blk",
                                               "virtio_console",
                                               "overlay",
                                               "vsock",
                                               "vmw_vsock_virtio_transport_common",
                                               "vmw_vsock_virtio_transport",
                                               "failover",
                                               "net_failover",
                                               "virtio_net"};

uint64_t ReadVmstatOomKills() {
  auto v = ReadFile("/proc/vmstat");
  if (!v.ok()) return 0;
  size_t at = v->find("\noom_kill ");
  if (at == std::string::npos) return 0;
  return std::strtoull(v->c_str() + at + 10, nullptr, 10);
}

}  // namespace

GuestInit::GuestInit(GuestArgs args) : args_(std::move(args)) {
  times_.init_start_ns = args_.start_ns;
  if (getrandom(&boot_id_, sizeof boot_id_, GRND_NONBLOCK) != sizeof boot_id_)
    boot_id_ = MonotonicNs() ^ getpid();
}

void RunGuest(const GuestArgs& args) {
  GuestInit init(args);
  init.Run();
}

BootEnvironment GuestInit::DetectEnvironment() {
  BootEnvironment env;
  struct statfs sfs;
  // The kernel runs /init from the initramfs as PID 1 of the initial PID namespace; the root is then a ramfs
  // or tmpfs. A test runs us as PID 1 of a new PID namespace over the host's root: never load modules, use
  // devtmpfs or delete files there.
  env.from_initramfs = getpid() == 1 && statfs("/", &sfs) == 0 &&
                       (sfs.f_type == RAMFS_MAGIC || sfs.f_type == TMPFS_MAGIC) && access("/init", X_OK) == 0;
  env.dev_mode = env.from_initramfs ? DevMode::kDevtmpfs : DevMode::kTmpfs;
  return env;
}

void GuestInit::LoadKernelModules() {
  // The tuned guest kernel (kernel/microvm.config) has everything built in and no module support at all.
  if (access("/proc/modules", F_OK) != 0) {
    log::Debug("the kernel has no module support: nothing to load");
    return;
  }
  utsname u{};
  uname(&u);
  auto report = LoadModules(std::string("/lib/modules/") + u.release, kModuleOrder);
  for (const auto& f : report.failed) log::Warn("kernel module not loaded", {{"module", f}});
  log::Debug("kernel modules",
             {{"loaded", report.loaded.size()}, {"present", report.already_present.size()}});
}

Status GuestInit::LoadSpec() {
  std::string path =
      args_.config_path.empty() ? "/" + std::string(nfc::guest::kTaskSpecPathInInitramfs) : args_.config_path;
  auto text = ReadFile(path);
  if (!text.ok()) return std::move(text).error().Context("read task spec");
  auto spec = nfc::guest::ParseTaskSpec(*text);
  if (!spec.ok()) return std::move(spec).error().Context("task spec " + path);
  spec_ = std::move(spec).value();
  // The spec may carry secrets in env; it is not left readable in the initramfs (freed at switch_root
  // anyway).
  if (env_.from_initramfs) unlink(path.c_str());
  return Ok();
}

void GuestInit::FailBoot(const Error& error, int exit_code) {
  log::Error("task not started", {{"error", error.ToString()}, {"exit_code", exit_code}});
  phase_ = Phase::kFailed;
  error_ = error.ToString();
  nfc::guest::ExitReport r;
  r.exit_code = exit_code;
  r.err = error_;
  exit_ = r;
  if (spec_.control.exit_ack_timeout_ms > 0) {
    exit_ack_deadline_ns_ = MonotonicNs() + uint64_t{spec_.control.exit_ack_timeout_ms} * 1000000;
  }
}

void GuestInit::Run() {
  int stdio_placeholders = ReserveStdio();
  auto sigfd = BlockSignalsAndOpenSignalfd();
  if (!sigfd.ok()) FatalReboot(sigfd.error().ToString().c_str());
  signals_ = std::move(sigfd).value();
  env_ = DetectEnvironment();
  if (env_.from_initramfs) {
    auto early = MountEarly(DevMode::kDevtmpfs);
    ReplaceStdioPlaceholders(stdio_placeholders);
    if (!early.ok()) log::Error("early mounts", {{"error", early.error().ToString()}});
    // Ctrl-Alt-Del (Firecracker's SendCtrlAltDel) then reaches us as SIGINT instead of an immediate reset.
    reboot(RB_DISABLE_CAD);
    auto cmdline = ReadKernelCmdline();
    if (cmdline.count("nomad.debug")) args_.debug = true;
  } else {
    ReplaceStdioPlaceholders(stdio_placeholders);
  }
  log::Configure(2, log::Format::kText, args_.debug ? log::Level::kDebug : log::Level::kInfo, "nomad-init");
  if (env_.from_initramfs) LoadKernelModules();

  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) FatalReboot("epoll_create1 failed");
  epoll_.Reset(ep);
  Watch(signals_.get(), WatchToken(WatchKind::kSignals, 0), EPOLLIN, signals_interest_);

  auto spec = LoadSpec();
  times_.config_loaded_ns = MonotonicNs();
  if (!args_.control_socket.empty()) spec_.control.unix_socket = args_.control_socket;
  if (spec_.debug && !args_.debug) {
    args_.debug = true;
    log::Configure(2, log::Format::kText, log::Level::kDebug, "nomad-init");
  }
  for (int s : {1, 2}) logs_[s] = std::make_unique<LogBuffer>(spec_.control.log_buffer_bytes);
  // The channel opens before the root is assembled: a host may watch the boot, and the test socket lives in
  // the filesystem we are about to leave.
  Listen();
  if (!spec.ok()) {
    FailBoot(spec.error(), 125);
  } else if (spec_.await_task) {
    phase_ = Phase::kAwaitingTask;
    log::Info("warm-start template: waiting for a task");
  } else {
    StartWorkload();
  }
  Loop();
}

void GuestInit::StartWorkload() {
  auto root = SetUpRoot(spec_, env_);
  if (!root.ok()) return FailBoot(root.error(), 125);
  times_.root_mounted_ns = MonotonicNs();
  auto net = SetUpNetwork(spec_);
  if (!net.ok()) return FailBoot(std::move(net).error().Context("network"), 125);
  times_.network_up_ns = MonotonicNs();
  auto forwards = StartForwards(spec_);
  if (!forwards.ok()) return FailBoot(std::move(forwards).error().Context("port relay"), 125);
  auto limits = ApplyRlimits(spec_);
  if (!limits.ok()) return FailBoot(limits.error(), 125);
  auto files = SetUpTaskFiles();
  if (!files.ok()) return FailBoot(std::move(files).error().Context("task directories"), 125);
  if (!awaiting_files_) LaunchWorkload();
}

void GuestInit::LaunchWorkload() {
  std::string user = spec_.process.user.empty() ? spec_.image.user : spec_.process.user;
  auto passwd = ReadFile("/etc/passwd");
  auto group = ReadFile("/etc/group");
  auto id = ResolveIdentity(user, passwd.ok() ? *passwd : "", group.ok() ? *group : "", spec_.process.groups);
  if (!id.ok()) return FailBoot(id.error(), 125);
  identity_ = *id;
  auto argv = nfc::guest::ResolveArgv(spec_);
  if (!argv.ok()) return FailBoot(argv.error(), 125);
  workload_env_ = FinalizeEnv(nfc::guest::ResolveEnv(spec_), identity_, spec_.hostname, false);
  workload_cwd_ = !spec_.process.working_dir.empty() ? spec_.process.working_dir
                  : !spec_.image.working_dir.empty() ? spec_.image.working_dir
                                                     : "/";
  // OCI runtimes create a missing working directory.
  if (auto s = MakeDirs(workload_cwd_); !s.ok())
    return FailBoot(std::move(s).error().Context("working directory"), 125);
  auto exe = LookPath((*argv)[0], workload_env_);
  if (!exe.ok()) return FailBoot(exe.error(), ExitCodeForLaunchError(exe.error()));

  if (spec_.workload_cgroup) {
    auto cg = CreateWorkloadCgroup();
    if (cg.ok()) {
      cgroup_procs_fd_ = *cg;
    } else {
      log::Warn("workload runs without its own cgroup", {{"error", cg.error().ToString()}});
    }
  }
  vmstat_oom_at_start_ = ReadVmstatOomKills();

  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) return FailBoot(Error::Errno("pipe2"), 125);
  UniqueFd out_w(out[1]), err_w(err[1]);
  out_pipe_[1].Reset(out[0]);
  out_pipe_[2].Reset(err[0]);
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  fcntl(err[0], F_SETFL, O_NONBLOCK);

  LaunchOptions o;
  o.argv = *argv;
  o.executable = *exe;
  o.env = workload_env_;
  o.working_dir = workload_cwd_;
  o.identity = identity_;
  o.stdout_fd = out_w.get();
  o.stderr_fd = err_w.get();
  o.cgroup_procs_fd = cgroup_procs_fd_;
  auto launched = Launch(o);
  if (!launched.ok()) return FailBoot(launched.error(), ExitCodeForLaunchError(launched.error()));
  workload_pid_ = launched->pid;
  times_.workload_execve_ns = launched->execve_ns;
  phase_ = Phase::kRunning;
  log::Info("workload started", {{"pid", workload_pid_}, {"argv0", o.executable}, {"uid", identity_.uid}});
  if (args_.debug) LogBootTimes();
}

void GuestInit::LogBootTimes() const {
  auto ms = [&](uint64_t t) {
    return t == 0 ? std::string("-") : std::to_string((t - times_.init_start_ns) / 1000) + "us";
  };
  log::Info("boot times (since init start)", {{"config", ms(times_.config_loaded_ns)},
                                              {"root", ms(times_.root_mounted_ns)},
                                              {"network", ms(times_.network_up_ns)},
                                              {"execve", ms(times_.workload_execve_ns)}});
}

void GuestInit::Loop() {
  epoll_event events[32];
  for (;;) {
    UpdateInterest();
    uint64_t now = MonotonicNs();
    int n = epoll_wait(epoll_.get(), events, 32, NextTimeoutMs(now));
    if (n < 0 && errno != EINTR) FatalReboot("epoll_wait failed");
    for (int i = 0; i < n; i++) {
      uint64_t token = events[i].data.u64;
      uint64_t index = TokenIndex(token);
      switch (TokenKind(token)) {
        case WatchKind::kSignals:
          OnSignals();
          break;
        case WatchKind::kListener:
          OnListener(static_cast<size_t>(index));
          break;
        case WatchKind::kConnection:
          OnConnection(index, events[i].events);
          break;
        case WatchKind::kWorkloadOutput:
          OnWorkloadOutput(static_cast<int>(index));
          break;
        case WatchKind::kExecFd:
          OnExecFd(index >> 2, static_cast<int>(index & 3), events[i].events);
          break;
        case WatchKind::kFilesWatch:
          OnFilesWatch(static_cast<size_t>(index));
          break;
        default:
          break;
      }
    }
    Deadlines(MonotonicNs());
    CheckWorkloadFinished();
    PumpAll();
  }
}

void GuestInit::OnSignals() {
  for (;;) {
    auto s = ReadSignal(signals_.get());
    if (!s.ok() || !s->has_value()) break;
    int sig = static_cast<int>((*s)->ssi_signo);
    switch (sig) {
      case SIGCHLD:
        break;  // reaped below
      case SIGTERM:
      case SIGINT:  // Ctrl-Alt-Del with CAD disabled
      case SIGPWR:
        log::Info("graceful stop requested", {{"signal", SignalName(sig)}});
        RequestStop(spec_.process.stop_signal, spec_.process.kill_timeout_ms);
        break;
      case SIGHUP:
      case SIGQUIT:
      case SIGUSR1:
      case SIGUSR2:
      case SIGWINCH:
        // Meant for the workload (an operator or the kernel addressed the VM's init), as tini forwards them.
        if (workload_pid_ > 0 && !workload_status_) kill(-workload_pid_, sig);
        break;
      default:
        if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
          if (workload_pid_ > 0 && !workload_status_) kill(-workload_pid_, sig);
        } else {
          // SIGPIPE from a vanished peer, SIGTTOU/SIGTTIN/SIGTSTP from a terminal, ...: init's own business.
          log::Debug("signal ignored", {{"signal", SignalName(sig)}});
        }
        break;
    }
  }
  for (const auto& r : ReapChildren()) OnReaped(r.pid, r.status);
}

void GuestInit::OnReaped(pid_t pid, int status) {
  if (pid == workload_pid_ && !workload_status_) {
    workload_status_ = status;
    times_.workload_exit_ns = MonotonicNs();
    log::Info("workload exited", {{"pid", pid}, {"status", DescribeWaitStatus(status)}});
    // Leftover processes of the task get the stop signal's treatment: TERM now, KILL after the kill timeout.
    if (kill(-1, SIGTERM) == 0) {
      kill(-1, SIGCONT);
      leftovers_kill_at_ns_ =
          MonotonicNs() + uint64_t{std::max<uint32_t>(spec_.process.kill_timeout_ms, 100)} * 1000000;
    }
    return;
  }
  for (auto& [id, e] : execs_) {
    if (e->pid == pid) {
      e->status = status;
      FinishExecIfDone(id);
      return;
    }
  }
  log::Debug("reaped orphan", {{"pid", pid}, {"status", DescribeWaitStatus(status)}});
}

void GuestInit::OnWorkloadOutput(int stream) {
  auto& fd = out_pipe_[stream];
  auto& buf = *logs_[stream];
  char chunk[65536];
  while (fd && buf.free_space() > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(sizeof chunk, buf.free_space()));
    ssize_t n = read(fd.get(), chunk, want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n <= 0) {
      Watch(fd.get(), 0, 0, out_interest_[stream]);  // deregister before the fd number can be reused
      fd.Reset();
      break;
    }
    buf.Append(std::string_view(chunk, static_cast<size_t>(n)));
  }
}

void GuestInit::CheckWorkloadFinished() {
  if (!workload_status_ || exit_) return;
  if (out_pipe_[1] || out_pipe_[2]) return;  // output still arriving (or held open by a leftover process)
  // Children remain (exec sessions, leftovers being terminated): wait for them, bounded by the kill deadline.
  // WNOWAIT: only look; the SIGCHLD path reaps.
  siginfo_t info{};
  if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0) return;
  FinalizeExit();
}

void GuestInit::FinalizeExit() {
  int status = *workload_status_;
  nfc::guest::ExitReport r;
  r.exit_code = ExitCodeFromWaitStatus(status);
  r.signal = SignalFromWaitStatus(status);
  r.oom_killed = OomHappened() && (r.signal == SIGKILL || r.signal == 0);
  r.log_end.stdout_offset = logs_[1]->end();
  r.log_end.stderr_offset = logs_[2]->end();
  exit_ = r;
  phase_ = Phase::kExited;
  leftovers_kill_at_ns_ = 0;
  stop_kill_at_ns_ = 0;
  if (spec_.control.exit_ack_timeout_ms > 0) {
    exit_ack_deadline_ns_ = MonotonicNs() + uint64_t{spec_.control.exit_ack_timeout_ms} * 1000000;
  }
  log::Info("exit result", {{"exit_code", r.exit_code},
                            {"signal", r.signal},
                            {"oom_killed", r.oom_killed},
                            {"stdout_bytes", r.log_end.stdout_offset},
                            {"stderr_bytes", r.log_end.stderr_offset}});
}

bool GuestInit::OomHappened() const {
  if (cgroup_procs_fd_ >= 0) {
    auto events = ReadFile(std::string(kWorkloadCgroup) + "/memory.events");
    if (events.ok()) {
      size_t at = events->find("oom_kill ");
      if (at != std::string::npos) return std::strtoull(events->c_str() + at + 9, nullptr, 10) > 0;
    }
  }
  // Without the workload's cgroup the global counter is the best evidence (in a VM, global = this task).
  return ReadVmstatOomKills() > vmstat_oom_at_start_;
}

void GuestInit::RequestStop(int signal, uint64_t kill_timeout_ms) {
  if (phase_ == Phase::kAwaitingTask) Shutdown("stop requested before a task was delivered");
  if (awaiting_files_) {
    awaiting_files_ = false;
    files_deadline_ns_ = 0;
    return FailBoot(Error::FailedPrecondition("stopped while waiting for the task's files from the host"),
                    128 + signal);
  }
  if (phase_ == Phase::kRunning && workload_pid_ > 0 && !workload_status_) {
    phase_ = Phase::kStopping;
    kill(-workload_pid_, signal);
    kill(-workload_pid_, SIGCONT);
    stop_kill_at_ns_ = MonotonicNs() + kill_timeout_ms * 1000000;
    return;
  }
  if (phase_ == Phase::kStopping) return;  // already on its way
  if (exit_) Shutdown("stop requested after the workload ended");
  // Exited but output or leftovers still draining: the leftover kill deadline finishes it.
}

void GuestInit::Deadlines(uint64_t now) {
  if (stop_kill_at_ns_ && now >= stop_kill_at_ns_) {
    stop_kill_at_ns_ = 0;
    if (!workload_status_) {
      log::Warn("workload ignored the stop signal; killing its process group");
      kill(-workload_pid_, SIGKILL);
    }
  }
  if (leftovers_kill_at_ns_ && now >= leftovers_kill_at_ns_) {
    leftovers_kill_at_ns_ = 0;
    if (kill(-1, SIGKILL) == 0) log::Warn("killed processes left behind by the workload");
  }
  if (exit_ack_deadline_ns_ && now >= exit_ack_deadline_ns_ && !exit_acked_) {
    log::Warn("exit result not acknowledged in time; shutting down",
              {{"timeout_ms", spec_.control.exit_ack_timeout_ms}});
    Shutdown("exit ack timeout");
  }
  if (files_deadline_ns_ && now >= files_deadline_ns_) {
    awaiting_files_ = false;
    files_deadline_ns_ = 0;
    FailBoot(Error::Timeout("the host did not send the task's files within " +
                            std::to_string(spec_.files.initial_timeout_ms) + " ms"),
             125);
  }
  if (files_scan_at_ns_ && now >= files_scan_at_ns_) SendGuestFileChanges();
  PollSerial(now);
  for (auto& [id, c] : conns_) {
    // A partial frame that stays incomplete was cut by a host reconnect: resynchronise (framing.h).
    if (c->decoder.HasPartial() && c->partial_since_ns && now - c->partial_since_ns > 1000000000ULL) {
      c->decoder.DropStalePartial();
      c->partial_since_ns = now;
    }
  }
}

int GuestInit::NextTimeoutMs(uint64_t now) const {
  uint64_t next = UINT64_MAX;
  for (uint64_t t : {stop_kill_at_ns_, leftovers_kill_at_ns_, exit_ack_deadline_ns_, serial_retry_at_ns_,
                     files_deadline_ns_, files_scan_at_ns_}) {
    if (t) next = std::min(next, t);
  }
  for (const auto& [id, c] : conns_) {
    if (c->decoder.HasPartial()) next = std::min<uint64_t>(next, now + 1000000000ULL);
  }
  if (workload_status_ && !exit_)
    next = std::min<uint64_t>(next, now + 20000000ULL);  // children draining: poll gently
  if (next == UINT64_MAX) return -1;
  if (next <= now) return 0;
  return static_cast<int>(std::min<uint64_t>((next - now) / 1000000 + 1, 60000));
}

void GuestInit::Shutdown(const char* why) {
  log::Info("shutting down", {{"reason", why}});
  phase_ = Phase::kShuttingDown;
  for (auto& [id, c] : conns_) {
    if (!c->greeted) continue;
    pb::GuestMessage m;
    FillStatus(m.mutable_status());
    Send(*c, m);
  }
  FlushAllBlocking(1000);
  if (args_.debug) LogBootTimes();
  ShutdownSystem(PowerAction::kReboot,
                 std::chrono::milliseconds(std::max<uint32_t>(spec_.process.kill_timeout_ms, 100)));
}

}  // namespace nfc::init::guest
