// nomad-fc-shim: the per-task supervisor (see supervisor.h, docs/lifecycle.md).
//
//   nomad-fc-shim start <task_dir>   detach (fork + setsid), boot the VM, then print "ok <pid>" or
//                                    "error: <message>" on stdout and exit; the detached shim lives on
//   nomad-fc-shim run <task_dir>     the same in the foreground (debugging)
//
// The shim never inherits the plugin's stdio (the plugin spawns it with /dev/null and a pipe for the one
// status line), runs in its own session, ignores SIGPIPE (log readers and control clients come and go) and
// logs to <task_dir>/shim.log.
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "base/log.h"
#include "base/process.h"
#include "shim/control_server.h"
#include "shim/exit_record.h"
#include "shim/supervisor.h"
#include "shim/task_dir.h"
#include "shim/wire.h"

namespace {

using namespace nfc;
using namespace nfc::shim;

void Report(int fd, const std::string& line) {
  if (fd < 0) return;
  std::string text = line + "\n";
  ssize_t ignored = ::write(fd, text.data(), text.size());
  (void)ignored;
}

Result<std::string> ReadSmallFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return Error::Errno("open " + path);
  std::string text;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::Errno("read " + path);
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > (4 << 20)) return Error::InvalidArgument(path + " is larger than 4 MiB");
  }
  return text;
}

// Runs the shim in this process. ready_fd gets the one status line.
int Serve(const std::string& task_dir, int ready_fd) {
  if (::chdir(task_dir.c_str()) != 0) {
    Report(ready_fd, "error: " + Error::Errno("chdir " + task_dir).message());
    return 1;
  }
  TaskDir dir{task_dir};
  int log_fd = ::open(dir.ShimLog().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
  auto text = ReadSmallFile(dir.ShimConfig());
  if (!text.ok()) {
    Report(ready_fd, "error: " + text.error().message());
    return 1;
  }
  auto config = ShimConfig::FromJson(*text);
  if (!config.ok()) {
    Report(ready_fd, "error: " + config.error().message());
    return 1;
  }
  log::Configure(log_fd >= 0 ? log_fd : 2, log::Format::kText,
                 log::ParseLevel(config->log_level, log::Level::kInfo), "shim");
  log::Info("shim starting", {{"task_id", config->task_id}, {"pid", ::getpid()}});

  // Relative: the task dir may be deeper than a unix socket path allows.
  auto listener = ListenUnix("control.sock");
  if (!listener.ok()) {
    Report(ready_fd, "error: " + listener.error().message());
    return 1;
  }
  Supervisor supervisor(std::move(*config));
  ControlServer server(std::move(*listener), &supervisor);
  std::thread serve([&] { server.Serve(); });

  Status booted = supervisor.Boot();
  if (!booted.ok()) {
    log::Error("boot failed", {{"error", booted.error().message()}});
    Report(ready_fd, "error: " + booted.error().message());
    server.Close();
    serve.join();
    ::unlink("control.sock");
    return 1;
  }
  auto me = IdentifyProcess(::getpid());
  if (me.ok()) {
    (void)WriteFileDurably(dir.ShimPid(),
                           std::to_string(me->pid) + " " + std::to_string(me->start_time) + "\n");
  }
  Report(ready_fd, "ok " + std::to_string(::getpid()));
  if (ready_fd >= 0) ::close(ready_fd);

  supervisor.Run();
  // The exit is durable in exit.json; linger briefly so waiting callers get their answers, or until
  // destroyed.
  supervisor.WaitForShutdown(std::chrono::seconds(3));
  server.Close();
  serve.join();
  ::unlink("control.sock");
  log::Info("shim exiting");
  return 0;
}

int Usage() {
  std::fprintf(
      stderr,
      "usage: nomad-fc-shim start|run <task_dir>\n"
      "The per-task supervisor of nomad-driver-firecracker; started by the driver, not by people.\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return Usage();
  std::string mode = argv[1];
  std::string task_dir = argv[2];
  if (task_dir.empty() || task_dir[0] != '/') return Usage();
  // One malloc arena for all threads (glibc gives each thread that allocates its own heap otherwise), and free
  // memory returned to the kernel early: the shim lives for the whole task under a 2 MiB RSS budget, and its
  // threads mostly wait.
  ::mallopt(M_ARENA_MAX, 1);
  ::mallopt(M_TRIM_THRESHOLD, 64 * 1024);
  ::mallopt(M_MMAP_THRESHOLD, 64 * 1024);  // fixed: no dynamic growth that keeps big freed blocks in the heap
  ::signal(SIGPIPE, SIG_IGN);
  ::umask(0077);
  if (mode == "run") return Serve(task_dir, STDOUT_FILENO);
  if (mode != "start") return Usage();

  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) {
    std::printf("error: pipe: %s\n", std::strerror(errno));
    return 1;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    std::printf("error: fork: %s\n", std::strerror(errno));
    return 1;
  }
  if (pid == 0) {
    // The detached shim: own session, stdio on /dev/null, parent (the plugin's short-lived helper) gone soon.
    ::close(pipefd[0]);
    ::setsid();
    int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd >= 0) {
      ::dup2(null_fd, 0);
      ::dup2(null_fd, 1);
      ::dup2(null_fd, 2);
      if (null_fd > 2) ::close(null_fd);
    }
    ::_exit(Serve(task_dir, pipefd[1]));
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
  if (line.empty()) line = "error: the shim exited before it was ready (see shim.log in " + task_dir + ")\n";
  std::fputs(line.c_str(), stdout);
  std::fflush(stdout);
  return line.rfind("ok ", 0) == 0 ? 0 : 1;
}
