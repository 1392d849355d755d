// Internal to Manager (manager.cc, manager_ops.cc): what the plugin keeps per task. Everything in it can be
// rebuilt from the DriverState, which is what RecoverTask does.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>

#include "shim/lifecycle.h"
#include "task/manager.h"

namespace nfc::task {

struct Manager::Task {
  DriverState state;
  driver::TaskHandle handle;
  shim::ControlClient client;
  std::chrono::system_clock::time_point started_at;
  std::optional<StartTimings> timings;
  std::mutex mu;
  // Guarded by mu: what the plugin last learned about the task's phase. The exit result is cached once known
  // (the shim's "exited" is final); other phases may have moved on since, so only an exited task answers a
  // call without asking the shim, with the message the shim would give (shim::Allowed).
  std::optional<ExitResult> exit;
  shim::Phase last_phase = shim::Phase::kRunning;  // StartTask and RecoverTask hand over a running task
  shim::Phase phase() const { return exit ? shim::Phase::kExited : last_phase; }
  // Refuses `op` when the task is known to have exited and the shim would refuse it too; any other phase may
  // have moved on since it was learned, so then the shim decides. Takes mu.
  Status Check(shim::Op op) {
    std::lock_guard<std::mutex> lock(mu);
    return phase() == shim::Phase::kExited ? shim::Allowed(op, shim::Phase::kExited) : Ok();
  }

  explicit Task(DriverState s) : state(std::move(s)), client(state.control_socket) {}
};

}  // namespace nfc::task
