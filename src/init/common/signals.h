// Signals and reaping for PID 1, tini-style: every signal init cares about is blocked and read synchronously
// from a signalfd in the event loop (no logic in async handlers); fault signals stay unblocked. Children are
// reaped exhaustively with waitpid(-1, WNOHANG) whenever SIGCHLD arrives.
#pragma once

#include <sys/signalfd.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"

namespace nfc::init {

// Blocks every catchable signal except the synchronous fault signals (SEGV, BUS, ILL, FPE, ABRT, TRAP, SYS)
// and returns a non-blocking signalfd for them. SIGTTIN/SIGTTOU are blocked as well so that init, which may
// share a terminal with its children, is never stopped by background terminal I/O.
Result<UniqueFd> BlockSignalsAndOpenSignalfd();

// Reads one pending signal; nullopt when none is pending.
Result<std::optional<signalfd_siginfo>> ReadSignal(int signalfd);

struct Reaped {
  pid_t pid;
  int status;  // raw wait status
};
// Reaps every child that has exited (waitpid(-1, WNOHANG) until 0 or ECHILD).
std::vector<Reaped> ReapChildren();

// Shell convention: the exit status, or 128 + the terminating signal.
int ExitCodeFromWaitStatus(int status);
int SignalFromWaitStatus(int status);  // 0 when it exited normally

// "SIGTERM" for 15; "signal 40" for ones without a name.
std::string SignalName(int signal);

// Restores default dispositions and an empty mask (call in a child before exec).
void ResetSignalsForChild();

}  // namespace nfc::init
