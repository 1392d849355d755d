#include "shim/lifecycle.h"

#include <array>
#include <string>

namespace nfc::shim {
namespace {

constexpr std::optional<Phase> kNo = std::nullopt;
constexpr Phase kBooting = Phase::kBooting, kRunning = Phase::kRunning, kStopping = Phase::kStopping,
                kExited = Phase::kExited, kShutDown = Phase::kShutDown;

// kTransitions[from][event]: the one table of legal moves. Rows follow Phase, columns follow Event.
// clang-format off
constexpr std::array<std::array<std::optional<Phase>, kEventCount>, kPhaseCount> kTransitions{{
    // vmm started  start failed  workload started  stop requested  exit recorded  shutdown answered
    {kBooting,      kExited,      kNo,              kStopping,      kNo,           kNo},        // created (3)
    {kNo,           kNo,          kRunning,         kStopping,      kExited,       kNo},        // booting
    {kNo,           kNo,          kNo,              kStopping,      kExited,       kNo},        // running
    {kNo,           kExited,      kStopping,        kStopping,      kExited,       kNo},        // stopping (1)
    {kNo,           kNo,          kNo,              kExited,        kNo,           kShutDown},  // exited (2)
    {kNo,           kNo,          kNo,              kShutDown,      kNo,           kShutDown},  // shut down
}};
// clang-format on
// (1) a start the guest reports after a stop was requested changes nothing.
// (2) a stop after the exit only ends the VM.
// (3) a Shutdown before the VMM started cancels the boot: the VMM is not started (or killed as soon as its
//     start returns), and the failed start moves stopping -> exited.

// kAllowed[op][phase]. Rows follow Op, columns follow Phase.
constexpr bool Y = true, N = false;
// clang-format off
constexpr std::array<std::array<bool, kPhaseCount>, kOpCount> kAllowed{{
    // created booting running stopping exited shut-down
    {Y,       Y,      Y,      Y,       Y,     Y},  // wait: blocks until exited
    {N,       Y,      Y,      Y,       Y,     Y},  // stop: once exited, answers the result after the VM ended
    {N,       N,      Y,      Y,       N,     N},  // signal: needs the workload
    {N,       N,      Y,      N,       N,     N},  // exec: needs the workload, and a task that is not ending
    {N,       Y,      Y,      Y,       Y,     Y},  // stats: needs the VMM
    {Y,       Y,      Y,      Y,       Y,     Y},  // inspect
    {Y,       Y,      Y,      Y,       Y,     Y},  // shutdown: in created it cancels the boot
}};
// clang-format on

template <typename E>
constexpr size_t Index(E e) {
  return static_cast<size_t>(e);
}

}  // namespace

const char* PhaseName(Phase phase) {
  switch (phase) {
    case Phase::kCreated:
      return "created";
    case Phase::kBooting:
      return "booting";
    case Phase::kRunning:
      return "running";
    case Phase::kStopping:
      return "stopping";
    case Phase::kExited:
      return "exited";
    case Phase::kShutDown:
      return "shut down";
  }
  return "unknown";
}

const char* EventName(Event event) {
  switch (event) {
    case Event::kVmmStarted:
      return "vmm started";
    case Event::kStartFailed:
      return "start failed";
    case Event::kWorkloadStarted:
      return "workload started";
    case Event::kStopRequested:
      return "stop requested";
    case Event::kExitRecorded:
      return "exit recorded";
    case Event::kShutdownAnswered:
      return "shutdown answered";
  }
  return "unknown";
}

const char* OpName(Op op) {
  switch (op) {
    case Op::kWait:
      return "wait";
    case Op::kStop:
      return "stop";
    case Op::kSignal:
      return "signal";
    case Op::kExec:
      return "exec";
    case Op::kStats:
      return "stats";
    case Op::kInspect:
      return "inspect";
    case Op::kShutdown:
      return "shutdown";
  }
  return "unknown";
}

std::optional<Phase> NextPhase(Phase from, Event event) {
  if (Index(from) >= kPhaseCount || Index(event) >= kEventCount) return std::nullopt;
  return kTransitions[Index(from)][Index(event)];
}

Status Allowed(Op op, Phase phase) {
  if (Index(op) < kOpCount && Index(phase) < kPhaseCount && kAllowed[Index(op)][Index(phase)]) return Ok();
  return Error::FailedPrecondition(std::string(OpName(op)) + ": task is " + PhaseName(phase));
}

bool Lifecycle::Apply(Event event) {
  std::optional<Phase> next = NextPhase(phase_, event);
  if (!next) return false;
  phase_ = *next;
  return true;
}

}  // namespace nfc::shim
