#include "base/process.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/proc.h"

namespace nfc {
namespace {

// Child side of Spawn(): async-signal-safe only. Reports errno over report_fd and exits on failure.
[[noreturn]] void ChildFail(int report_fd, int err) {
  ssize_t ignored = ::write(report_fd, &err, sizeof err);
  (void)ignored;
  _exit(127);
}

void CloseAllExcept(int report_fd, const int* keep, size_t nkeep) {
  // keep[] is sorted ascending and includes 0,1,2.
  int lo = 0;
  for (size_t i = 0; i <= nkeep; i++) {
    int hi = i < nkeep ? keep[i] : -1;
    unsigned first = static_cast<unsigned>(lo);
    unsigned last = hi < 0 ? ~0U : static_cast<unsigned>(hi - 1);
    if (hi < 0 || hi > lo) {
      // report_fd is O_CLOEXEC and must survive until exec: skip it by splitting the range.
      auto close_range_fn = [](unsigned a, unsigned b) {
        if (a > b) return;
        if (syscall(SYS_close_range, a, b, 0) != 0) {
          struct rlimit rl;
          unsigned max = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? static_cast<unsigned>(rl.rlim_cur) : 65536;
          for (unsigned fd = a; fd <= b && fd < max; fd++) ::close(static_cast<int>(fd));
        }
      };
      unsigned r = static_cast<unsigned>(report_fd);
      if (r >= first && r <= last) {
        if (r > first) close_range_fn(first, r - 1);
        if (r < last) close_range_fn(r + 1, last);
      } else {
        close_range_fn(first, last);
      }
    }
    if (hi < 0) break;
    lo = hi + 1;
  }
}

}  // namespace

Result<Child> Spawn(const SpawnOptions& o) {
  if (o.argv.empty()) return Error::InvalidArgument("spawn: empty argv");

  // Everything the child needs is prepared before fork.
  std::vector<char*> argv;
  for (const auto& a : o.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  if (o.env) {
    for (const auto& e : *o.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
  }
  std::vector<int> keep = {0, 1, 2};
  for (const auto& [from, to] : o.extra_fds) {
    if (to < 3)
      return Error::InvalidArgument("spawn: extra fd target " + std::to_string(to) + " collides with stdio");
    keep.push_back(to);
  }
  std::sort(keep.begin(), keep.end());
  keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
  int high_base = keep.back() + 1;
  std::vector<int> tmp(o.extra_fds.size(), -1);

  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) return Error::Errno("spawn: pipe2");
  UniqueFd report_r(report[0]), report_w(report[1]);

  UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devnull) return Error::Errno("spawn: open /dev/null");
  bool search_path = o.argv[0].find('/') == std::string::npos;
  std::vector<const char*> cgroup_procs;
  for (const auto& f : o.join_cgroups) cgroup_procs.push_back(f.c_str());

  pid_t pid = fork();
  if (pid < 0) return Error::Errno("spawn " + o.argv[0] + ": fork");
  if (pid == 0) {
    int rfd = report_w.get();
    // Default signal dispositions and an empty mask: the parent's choices (ignored SIGPIPE, blocked signals
    // for a signalfd loop) must not leak into programs we run.
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    for (int sig = 1; sig < NSIG; sig++) signal(sig, SIG_DFL);
    if (o.new_session && setsid() < 0) ChildFail(rfd, errno);
    if (o.parent_death_signal != 0 && prctl(PR_SET_PDEATHSIG, o.parent_death_signal) != 0)
      ChildFail(rfd, errno);
    // Move passed fds out of the way first, so a source that equals another's target is not clobbered.
    for (size_t i = 0; i < o.extra_fds.size(); i++) {
      tmp[i] = fcntl(o.extra_fds[i].first, F_DUPFD_CLOEXEC, high_base + 64);
      if (tmp[i] < 0) ChildFail(rfd, errno);
    }
    int in = o.stdin_fd >= 0 ? o.stdin_fd : devnull.get();
    int out = o.stdout_fd >= 0 ? o.stdout_fd : devnull.get();
    int err = o.stderr_fd >= 0 ? o.stderr_fd : devnull.get();
    int in2 = fcntl(in, F_DUPFD_CLOEXEC, high_base + 64);
    int out2 = fcntl(out, F_DUPFD_CLOEXEC, high_base + 64);
    int err2 = fcntl(err, F_DUPFD_CLOEXEC, high_base + 64);
    if (in2 < 0 || out2 < 0 || err2 < 0) ChildFail(rfd, errno);
    if (dup2(in2, 0) < 0 || dup2(out2, 1) < 0 || dup2(err2, 2) < 0) ChildFail(rfd, errno);
    for (size_t i = 0; i < o.extra_fds.size(); i++) {
      if (dup2(tmp[i], o.extra_fds[i].second) < 0) ChildFail(rfd, errno);
    }
    CloseAllExcept(rfd, keep.data(), keep.size());
    if (!o.cwd.empty() && chdir(o.cwd.c_str()) != 0) ChildFail(rfd, errno);
    if (!o.netns_path.empty()) {
      int ns = open(o.netns_path.c_str(), O_RDONLY | O_CLOEXEC);
      if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) ChildFail(rfd, errno);
      close(ns);
    }
    if (!cgroup_procs.empty()) {
      // Joined before exec, so all the program allocates is charged to those cgroups.
      char pid_text[16];
      size_t len = 0;
      for (pid_t v = getpid(); v > 0 && len < sizeof pid_text; v /= 10)
        pid_text[len++] = static_cast<char>('0' + v % 10);
      for (size_t i = 0; i < len / 2; i++) std::swap(pid_text[i], pid_text[len - 1 - i]);
      for (const char* file : cgroup_procs) {
        int fd = open(file, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, pid_text, len) != static_cast<ssize_t>(len)) ChildFail(rfd, errno);
        close(fd);
      }
    }
    char** env = o.env ? envp.data() : environ;
    if (search_path) {
      execvpe(argv[0], argv.data(), env);
    } else {
      execve(argv[0], argv.data(), env);
    }
    ChildFail(rfd, errno);
  }

  report_w.Reset();
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(report_r.get(), &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  if (n == sizeof child_errno) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return Error::Sys(child_errno, "spawn " + o.argv[0]);
  }
  Child child;
  child.pid = pid;
  auto pidfd = PidfdOpen(pid);
  if (pidfd.ok()) child.pidfd = std::move(pidfd).value();
  return child;
}

Result<unsigned long long> ProcessStartTime(pid_t pid) {
  NFC_ASSIGN_OR_RETURN(ProcStat stat, ReadProcStat(pid));
  return static_cast<unsigned long long>(stat.start_time);
}

bool ProcessIdentity::IsAlive() const {
  if (pid <= 0) return false;
  auto stat = ReadProcStat(pid);
  // A zombie still has a /proc entry; it is not alive for our purposes.
  return stat.ok() && stat->start_time == start_time && !stat->Exited();
}

Result<ProcessIdentity> IdentifyProcess(pid_t pid) {
  NFC_ASSIGN_OR_RETURN(auto start, ProcessStartTime(pid));
  return ProcessIdentity{pid, start};
}

Result<UniqueFd> PidfdOpen(pid_t pid) {
  long fd = syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return Error::Errno("pidfd_open " + std::to_string(pid));
  // pidfds are created close-on-exec by the kernel.
  return UniqueFd(static_cast<int>(fd));
}

Status RunToCompletion(SpawnOptions options) {
  int err_pipe[2];
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return Error::Errno("pipe");
  UniqueFd err_r(err_pipe[0]), err_w(err_pipe[1]);
  options.stderr_fd = err_w.get();
  std::string program = options.argv.empty() ? "" : options.argv[0];
  NFC_ASSIGN_OR_RETURN(Child child, Spawn(options));
  err_w.Reset();
  std::string err_text;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(err_r.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (err_text.size() < 4096) err_text.append(buf, static_cast<size_t>(n));  // drain the rest unread
  }
  NFC_ASSIGN_OR_RETURN(int status, WaitForExit(child.pid));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Ok();
  while (!err_text.empty() && (err_text.back() == '\n' || err_text.back() == ' ')) err_text.pop_back();
  ErrorCode code = err_text.find(std::strerror(ENOSPC)) != std::string::npos ? ErrorCode::kResourceExhausted
                                                                             : ErrorCode::kInternal;
  return Error(code, program + ": " + DescribeWaitStatus(status) + (err_text.empty() ? "" : ": " + err_text));
}

Result<int> WaitForExit(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return Error::Errno("waitpid " + std::to_string(pid));
  }
  return status;
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* name = sigabbrev_np(sig);
    return "killed by signal " + std::to_string(sig) + (name ? std::string(" (SIG") + name + ")" : "");
  }
  return "wait status " + std::to_string(status);
}

}  // namespace nfc
