#include "init/common/signals.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

namespace nfc::init {
namespace {

constexpr int kFaultSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS};

}  // namespace

Result<UniqueFd> BlockSignalsAndOpenSignalfd() {
  sigset_t set;
  sigfillset(&set);
  for (int s : kFaultSignals) sigdelset(&set, s);
  if (sigprocmask(SIG_SETMASK, &set, nullptr) != 0) return Error::Errno("sigprocmask");
  // A PID-namespace init (tests) drops signals from its parent namespace whose disposition is SIG_DFL unless
  // they are blocked; they are blocked, but a handler also makes the intent explicit to the kernel and to
  // readers.
  struct sigaction sa {};
  sa.sa_handler = [](int) {};
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGPWR, SIGCHLD}) sigaction(s, &sa, nullptr);
  int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return Error::Errno("signalfd");
  return UniqueFd(fd);
}

Result<std::optional<signalfd_siginfo>> ReadSignal(int signalfd) {
  signalfd_siginfo info;
  for (;;) {
    ssize_t n = ::read(signalfd, &info, sizeof info);
    if (n == sizeof info) return std::optional<signalfd_siginfo>(info);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return std::optional<signalfd_siginfo>();
    return Error::Errno("read signalfd");
  }
}

std::vector<Reaped> ReapChildren() {
  std::vector<Reaped> out;
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      out.push_back({pid, status});
      continue;
    }
    if (pid < 0 && errno == EINTR) continue;
    break;  // 0: children left but none exited; ECHILD: no children
  }
  return out;
}

int ExitCodeFromWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

int SignalFromWaitStatus(int status) {
  return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

std::string SignalName(int signal) {
  const char* abbrev = sigabbrev_np(signal);
  if (abbrev) return std::string("SIG") + abbrev;
  return "signal " + std::to_string(signal);
}

void ResetSignalsForChild() {
  for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

}  // namespace nfc::init
