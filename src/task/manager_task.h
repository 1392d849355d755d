// Internal to Manager (manager.cc, manager_ops.cc): what the plugin keeps per task. Everything in it can be
// rebuilt from the DriverState, which is what RecoverTask does.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>

#include "task/manager.h"

namespace nfc::task {

struct Manager::Task {
  DriverState state;
  driver::TaskHandle handle;
  shim::ControlClient client;
  std::chrono::system_clock::time_point started_at;
  std::optional<StartTimings> timings;
  std::mutex mu;
  std::optional<shim::ExitResult> exit;  // guarded by mu; cached once known
  explicit Task(DriverState s) : state(std::move(s)), client(state.control_socket) {}
};

}  // namespace nfc::task
