// The task's lifecycle as its shim sees it: one phase, the events that move it (one transition table), and
// the control operations each phase allows. No I/O and no locking: the Supervisor applies events under its
// mutex; the plugin checks Allowed() against the phase it last learned, so a call that cannot succeed is
// refused with the same message whether or not it reached the shim.
//
//   created --vmm started--> booting --workload started--> running
//      |                        |                             |
//      | start failed           +------ stop requested -------+--> stopping
//      v                        v                             v       |
//   exited <------------------- exit recorded ----------------+-------+
//      |
//      +--shutdown answered--> shut down
//
// The VM's own end is not a phase: the exit is recorded after it (VM crash) or before it (the guest reported
// the workload's exit and shuts down once that record is acknowledged).
#pragma once

#include <cstdint>
#include <optional>

#include "base/error.h"

namespace nfc::shim {

enum class Phase : uint8_t {
  kCreated,   // the control socket is up; the VMM is not started yet
  kBooting,   // the VMM runs; the guest has not started the workload yet
  kRunning,   // the workload runs
  kStopping,  // a stop was requested (StopTask, Shutdown, the boot timeout); no exit recorded yet
  kExited,    // the exit result is recorded and durable; the VM may still be shutting down
  kShutDown,  // a Shutdown request was answered: the shim process ends now
};
inline constexpr int kPhaseCount = 6;

enum class Event : uint8_t {
  kVmmStarted,        // Boot(): the VMM accepted the start
  kStartFailed,       // Boot(): the VMM could not be started (nothing runs)
  kWorkloadStarted,   // the guest reports the workload running
  kStopRequested,     // Stop, Shutdown, or the shim's own boot timeout
  kExitRecorded,      // the exit result is durable
  kShutdownAnswered,  // the answer to a Shutdown request was sent
};
inline constexpr int kEventCount = 6;

// The control operations (one per request of src/shim/control.proto).
enum class Op : uint8_t { kWait, kStop, kSignal, kExec, kStats, kInspect, kShutdown };
inline constexpr int kOpCount = 7;

const char* PhaseName(Phase phase);  // "created", "booting", "running", "stopping", "exited", "shut down"
const char* EventName(Event event);  // "vmm started", ...
const char* OpName(Op op);           // "wait", "stop", "signal", "exec", "stats", "inspect", "shutdown"

// The phase `event` leads to from `from`; nullopt when the event cannot happen there.
std::optional<Phase> NextPhase(Phase from, Event event);

// Ok when `op` makes sense in `phase`; otherwise FAILED_PRECONDITION "<op>: task is <phase>".
Status Allowed(Op op, Phase phase);

class Lifecycle {
 public:
  Phase phase() const { return phase_; }
  // Moves along the table. An event the table does not allow in the current phase changes nothing and returns
  // false (the caller decides whether that is worth a log line: a late report after a stop is normal).
  bool Apply(Event event);

 private:
  Phase phase_ = Phase::kCreated;
};

}  // namespace nfc::shim
