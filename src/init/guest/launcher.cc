#include "init/guest/launcher.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

#include "base/unique_fd.h"
#include "init/common/signals.h"

namespace nfc::init::guest {
namespace {

struct ChildFailure {
  int step;
  int err;
};

enum Step { kSetsid = 1, kTty, kStdio, kCgroup, kGroups, kGid, kUid, kChdir, kExec };

const char* StepName(int step) {
  switch (step) {
    case kSetsid:
      return "setsid";
    case kTty:
      return "open controlling terminal";
    case kStdio:
      return "set up stdio";
    case kCgroup:
      return "join cgroup";
    case kGroups:
      return "setgroups";
    case kGid:
      return "setgid";
    case kUid:
      return "setuid";
    case kChdir:
      return "chdir to working directory";
    case kExec:
      return "execve";
  }
  return "start";
}

[[noreturn]] void Fail(int fd, int step) {
  ChildFailure f{step, errno};
  ssize_t ignored = ::write(fd, &f, sizeof f);
  (void)ignored;
  _exit(125);
}

std::string EnvValue(const std::vector<std::string>& env, std::string_view key) {
  for (const auto& kv : env) {
    if (kv.size() > key.size() && kv.compare(0, key.size(), key) == 0 && kv[key.size()] == '=') {
      return kv.substr(key.size() + 1);
    }
  }
  return {};
}

}  // namespace

int ExitCodeForLaunchError(const Error& e) {
  if (e.code() == ErrorCode::kNotFound) return 127;
  if (e.code() == ErrorCode::kPermissionDenied) return 126;
  return 125;
}

Result<std::string> LookPath(const std::string& name, const std::vector<std::string>& env) {
  auto check = [](const std::string& path) -> Status {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return Error(ErrorCode::kNotFound, path + ": " + strerror(errno));
    if (S_ISDIR(st.st_mode)) return Error(ErrorCode::kPermissionDenied, path + " is a directory");
    if ((st.st_mode & 0111) == 0) return Error(ErrorCode::kPermissionDenied, path + " is not executable");
    return Ok();
  };
  if (name.find('/') != std::string::npos) {
    NFC_RETURN_IF_ERROR(check(name));
    return name;
  }
  std::string path = EnvValue(env, "PATH");
  if (path.empty()) path = kDefaultPath;
  std::optional<Error> denied;
  size_t start = 0;
  for (;;) {
    size_t end = path.find(':', start);
    std::string dir = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (dir.empty()) dir.push_back('.');  // not `= "."`: GCC 12 -O3 -Wrestrict false positive
    std::string candidate = dir + "/" + name;
    auto s = check(candidate);
    if (s.ok()) return candidate;
    if (s.error().code() == ErrorCode::kPermissionDenied && !denied) denied = s.error();
    if (end == std::string::npos) break;
    start = end + 1;
  }
  if (denied) return *denied;
  return Error(ErrorCode::kNotFound, "\"" + name + "\": executable file not found in $PATH (" + path + ")");
}

std::vector<std::string> FinalizeEnv(std::vector<std::string> env, const Identity& id,
                                     const std::string& hostname, bool tty) {
  auto has = [&](std::string_view key) {
    for (const auto& kv : env) {
      if (kv.size() > key.size() && kv.compare(0, key.size(), key) == 0 && kv[key.size()] == '=') return true;
    }
    return false;
  };
  if (!has("PATH")) env.push_back(std::string("PATH=") + kDefaultPath);
  if (!has("HOME")) env.push_back("HOME=" + id.home);
  if (!hostname.empty() && !has("HOSTNAME")) env.push_back("HOSTNAME=" + hostname);
  if (tty && !has("TERM")) env.push_back("TERM=xterm");
  return env;
}

namespace {

// Runs in the forked child and allocates nothing: everything it needs was prepared before fork.
// Reports the execve time (success) or the failing step and errno (then exits 125) on `report_fd`.
[[noreturn]] void ExecChild(const LaunchOptions& o, int report_fd, int devnull, char* const* argv,
                            char* const* envp, const std::vector<gid_t>& groups) {
  int rfd = report_fd;
  ResetSignalsForChild();
  if (setsid() < 0) Fail(rfd, kSetsid);
  if (!o.tty_path.empty()) {
    int tty = ::open(o.tty_path.c_str(), O_RDWR);  // no O_NOCTTY: a session leader acquires it
    if (tty < 0) Fail(rfd, kTty);
    if (ioctl(tty, TIOCSCTTY, 0) != 0) Fail(rfd, kTty);
    if (dup2(tty, 0) < 0 || dup2(tty, 1) < 0 || dup2(tty, 2) < 0) Fail(rfd, kStdio);
    if (tty > 2) ::close(tty);
  } else {
    // Move the sources above 2 first so that dup2 order cannot clobber one with another.
    int in = fcntl(o.stdin_fd >= 0 ? o.stdin_fd : devnull, F_DUPFD_CLOEXEC, 3);
    int out = fcntl(o.stdout_fd >= 0 ? o.stdout_fd : devnull, F_DUPFD_CLOEXEC, 3);
    int err = fcntl(o.stderr_fd >= 0 ? o.stderr_fd : devnull, F_DUPFD_CLOEXEC, 3);
    if (in < 0 || out < 0 || err < 0) Fail(rfd, kStdio);
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) Fail(rfd, kStdio);
  }
  if (o.cgroup_procs_fd >= 0 && ::write(o.cgroup_procs_fd, "0", 1) != 1) Fail(rfd, kCgroup);
  if (setgroups(groups.size(), groups.data()) != 0) Fail(rfd, kGroups);
  if (setgid(o.identity.gid) != 0) Fail(rfd, kGid);
  if (setuid(o.identity.uid) != 0) Fail(rfd, kUid);
  if (chdir(o.working_dir.c_str()) != 0) Fail(rfd, kChdir);
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t now = static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
  ssize_t ignored = ::write(rfd, &now, sizeof now);
  (void)ignored;
  execve(o.executable.c_str(), argv, envp);
  Fail(rfd, kExec);
}

// Reads the child's report until the pipe closes (at execve or at the child's exit).
Result<Launched> ReadLaunchReport(int report_fd, const LaunchOptions& o, pid_t pid) {
  Launched launched;
  launched.pid = pid;
  char buf[sizeof(uint64_t) + sizeof(ChildFailure)];
  size_t got = 0;
  while (got < sizeof buf) {
    ssize_t n = ::read(report_fd, buf + got, sizeof buf - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ChildFailure failure{};
  if (got == sizeof(uint64_t)) {
    std::memcpy(&launched.execve_ns, buf, sizeof(uint64_t));
    return launched;
  }
  if (got == sizeof buf) {
    std::memcpy(&failure, buf + sizeof(uint64_t), sizeof failure);
  } else if (got == sizeof failure) {
    std::memcpy(&failure, buf, sizeof failure);
  } else {
    failure = {0, EIO};
  }
  // The child exits 125 right after reporting; the caller's reaper collects it.
  std::string what = "start " + o.argv[0] + ": " + StepName(failure.step);
  if (failure.step == kChdir) what += " " + o.working_dir;
  if (failure.step == kExec) what += " " + o.executable;
  Error e = Error::Sys(failure.err, what);
  if (failure.step == kExec && (failure.err == ENOENT)) return Error(ErrorCode::kNotFound, e.message());
  if (failure.step == kExec && (failure.err == EACCES || failure.err == ENOEXEC || failure.err == EPERM)) {
    return Error(ErrorCode::kPermissionDenied, e.message());
  }
  return Error(ErrorCode::kFailedPrecondition, e.message());
}

}  // namespace

Result<Launched> Launch(const LaunchOptions& o) {
  if (o.argv.empty()) return Error::InvalidArgument("launch: empty argv");
  std::vector<char*> argv;
  for (const auto& a : o.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : o.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  std::vector<gid_t> groups = o.identity.groups;

  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) return Error::Errno("launch: pipe2");
  UniqueFd report_r(report[0]), report_w(report[1]);
  UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devnull) return Error::Errno("launch: open /dev/null");

  pid_t pid = fork();
  if (pid < 0) return Error::Errno("launch " + o.argv[0] + ": fork");
  if (pid == 0) ExecChild(o, report_w.get(), devnull.get(), argv.data(), envp.data(), groups);
  report_w.Reset();
  return ReadLaunchReport(report_r.get(), o, pid);
}

}  // namespace nfc::init::guest
