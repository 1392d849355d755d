// TaskFiles: the host end of Nomad's task directories in the VM (docs/task-files.md). One files::Mirror per
// root (local, secrets: host -> guest; alloc: both ways, the host winning conflicts), kept in step with the
// guest over the current agent connection:
//   - Attach(): a new connection. On a new VM instance (boot id) everything is sent, else what changed; then
//     FilesReady, which lets the workload start (or, with the error, fails its start).
//   - a watcher thread: inotify on every host root; a change is sent after kSettle of quiet (bounded), so a
//     template rendered by Nomad reaches the guest within milliseconds without polling;
//   - a receiver thread: applies what the guest changed in its two-way roots to the host directory;
//   - Barrier(): a synchronous scan and send, answered by the guest after it applied everything. The
//     supervisor calls it before forwarding a signal or an exec, so every host change made before Nomad's
//     SignalTask/ExecTask (template change_mode "signal"/"restart"/"script") is in the guest when the
//     workload sees the signal or the script runs. inotify alone could not promise that: its events are
//     asynchronous, the scan is not.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "files/mirror.h"
#include "guest/agent_client.h"
#include "shim/shim_config.h"

namespace nfc::shim {

class TaskFiles {
 public:
  // Opens every root (each must be an existing directory). None configured: nullptr, nothing to do.
  static Result<std::unique_ptr<TaskFiles>> Open(const std::vector<HostFileRoot>& roots, uint64_t max_bytes);
  ~TaskFiles();

  Status Attach(const std::shared_ptr<guest::AgentClient>& agent);
  void Detach();
  Status Barrier();

 private:
  TaskFiles() = default;
  Status SendAll(const std::shared_ptr<guest::AgentClient>& agent);
  void WatchLoop();
  void ReceiveLoop(const std::shared_ptr<guest::AgentClient>& agent);

  struct Root {
    HostFileRoot config;
    std::unique_ptr<files::Mirror> mirror;
    std::unique_ptr<files::TreeWatcher> watcher;
  };
  std::vector<Root> roots_;
  UniqueFd wake_;  // eventfd: stops the watcher thread
  std::thread watcher_;
  std::thread receiver_;
  std::atomic<bool> stopping_{false};

  std::mutex mu_;  // guards agent_ and boot_id_; sends themselves are serialised by each Mirror
  std::shared_ptr<guest::AgentClient> agent_;
  uint64_t boot_id_ = 0;
};

}  // namespace nfc::shim
