// Launching a task's shim, and stopping one that must not outlive a failed start.
//
// Launch spawns `nomad-fc-shim start <task dir>` (inside the allocation's network namespace when the task has
// one: the shim and its VMM live there), reads the shim's one readiness reply (shim/readiness.h) and returns
// it: the shim answers once the workload runs or the start failed, so there is no polling, and the shim's
// error code survives the trip (a boot timeout stays kTimeout and reaches Nomad as recoverable).
//
// An interface so that the start pipeline is unit-tested with a stand-in (manager_test.cc);
// MakeShimLauncher() is the real one.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "base/error.h"
#include "base/process.h"
#include "shim/readiness.h"
#include "shim/task_dir.h"

namespace nfc::task {

class ShimLauncher {
 public:
  virtual ~ShimLauncher() = default;
  // OK when a shim can be launched at all (its binary is installed); checked before a start creates anything.
  virtual Status Check() = 0;
  // Starts the shim of `dir` (whose shim.json is written) and blocks until its readiness reply.
  virtual Result<shim::ShimReady> Launch(const shim::TaskDir& dir, const std::string& netns_path) = 0;
  // Ends the shim of `dir` (`shim` when known, else the one its shim.pid names) and a VMM it left behind.
  virtual Status Stop(const shim::TaskDir& dir, std::optional<ProcessIdentity> shim) = 0;
};

std::unique_ptr<ShimLauncher> MakeShimLauncher();

// The installed nomad-fc-shim: $NFC_SHIM_PATH, beside the driver binary (or the build tree's src/shim), then
// /usr/lib/nomad-firecracker and /usr/local/lib/nomad-firecracker. Never in Nomad's plugin_dir: Nomad would
// try to load it as a plugin.
Result<std::string> FindShimBinary();

// Asks a live shim to shut down (it kills its VMM), then insists with SIGKILL; then kills a VMM recorded in
// the task dir's vmm.json if it is still alive (its shim was killed). Harmless when nothing runs.
Status StopTaskProcesses(const shim::TaskDir& dir, std::optional<ProcessIdentity> shim);

}  // namespace nfc::task
