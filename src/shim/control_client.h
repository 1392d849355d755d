// ControlClient: the plugin's (and the CLI's) side of a task shim's control socket. Each call opens its own
// connection, so calls from many threads (several WaitTask callers, a stats stream, an exec) never block each
// other, and a dead plugin leaves nothing half-open in the shim. Thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/error.h"
#include "base/unique_fd.h"
#include "shim/types.h"

namespace nfc::shim {

// One `nomad alloc exec` session relayed through the shim. Send* may be called from one thread while another
// calls Next(). Destroying the stream (or Cancel()) closes the connection, which makes the shim kill the
// command.
class ShimExecClient {
 public:
  struct Event {
    enum class Kind { kStdout, kStderr, kStdoutClosed, kStderrClosed, kExited };
    Kind kind = Kind::kStdout;
    std::string data;   // kStdout / kStderr
    ExitResult result;  // kExited
  };

  explicit ShimExecClient(UniqueFd fd) : fd_(std::move(fd)) {}
  Status SendStdin(std::string_view data);
  Status CloseStdin();
  Status Resize(unsigned rows, unsigned cols);
  // The next output event; after kExited the stream is finished. `cancelled` is polled while waiting.
  Result<Event> Next(const std::function<bool()>& cancelled = nullptr);
  void Cancel();

 private:
  UniqueFd fd_;
  bool stdout_pending_close_ = false;
  bool stderr_pending_close_ = false;
  bool exit_pending_ = false;
  ExitResult pending_result_;
  std::string pending_stderr_;
};

class ControlClient {
 public:
  explicit ControlClient(std::string socket_path) : socket_path_(std::move(socket_path)) {}

  // Blocks until the task exits. `cancelled` is polled (the gRPC call went away): then kCancelled.
  Result<ExitResult> Wait(const std::function<bool()>& cancelled = nullptr) const;
  // Signal (0 = none) -> wait up to `timeout` -> graceful VM stop -> hard stop. Returns once the VM is gone.
  Result<ExitResult> Stop(int signal, std::chrono::milliseconds timeout) const;
  Status Signal(int signal) const;
  Result<ExecResult> Exec(const ExecRequest& request) const;
  Result<std::unique_ptr<ShimExecClient>> ExecStreaming(const ExecRequest& request) const;
  Result<StatsSample> Stats() const;
  Result<InspectInfo> Inspect() const;
  // Hard-stops the VM if needed and makes the shim exit.
  Status Shutdown() const;

  const std::string& socket_path() const { return socket_path_; }
  // Upper bound for calls that should answer promptly (everything but Wait, Stop and Exec).
  int quick_timeout_ms = 10000;

 private:
  std::string socket_path_;
};

}  // namespace nfc::shim
