// ControlServer: the shim's side of the control socket. Accepts connections, reads one Request each, and
// hands it to a ControlHandler on a thread of its own (a blocked Wait must not hold up a Stop). The handler
// is the shim's task supervisor; tests plug in a fake.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"
#include "base/unique_fd.h"
#include "shim/types.h"

namespace nfc::shim {

namespace control {  // the wire types (control.proto) stay out of this header
class Request;
class Response;
class ExecRequest;
}  // namespace control

// The server half of one streaming exec session.
class ShimExecServer {
 public:
  struct Input {
    std::string stdin_data;
    bool stdin_close = false;
    unsigned rows = 0, cols = 0;  // non-zero: resize
  };
  virtual ~ShimExecServer() = default;
  // Next input from the client, waiting up to timeout_ms. nullopt on timeout; kUnavailable once the client
  // left.
  virtual Result<std::optional<Input>> ReadInput(int timeout_ms) = 0;
  virtual Status WriteStdout(std::string_view data) = 0;
  virtual Status WriteStderr(std::string_view data) = 0;
  virtual Status CloseStdout() = 0;
  virtual Status CloseStderr() = 0;
  virtual Status WriteExit(const ExitResult& result) = 0;
  // The fd to poll for client input (readable) or hang-up.
  virtual int input_fd() const = 0;
};

// The task behind the socket. Each operation is checked against the task's phase by the handler itself (the
// Supervisor, under the lock that guards the phase, with shim::Allowed), so a check and the state it checks
// cannot drift apart; the server only decodes and encodes.
class ControlHandler {
 public:
  virtual ~ControlHandler() = default;
  // Blocks until the task exited; `client_gone` turns true when the caller hung up (stop waiting then).
  virtual Result<ExitResult> Wait(const std::function<bool()>& client_gone) = 0;
  virtual Result<ExitResult> Stop(int signal, std::chrono::milliseconds timeout) = 0;
  virtual Status Signal(int signal) = 0;
  virtual Result<ExecResult> Exec(const ExecRequest& request) = 0;
  // Runs one interactive session to the end. Errors returned before anything was streamed reach the client as
  // the answer to its request; later ones end the stream with an error frame.
  virtual Status ExecStreaming(const ExecRequest& request, ShimExecServer& session) = 0;
  virtual Result<StatsSample> Stats() = 0;
  virtual InspectInfo Inspect() = 0;
  // Hard-stops the VM if it runs. Called before the answer is sent; AfterShutdownReply afterwards.
  virtual Status Shutdown() = 0;
  virtual void AfterShutdownReply() = 0;
};

class ControlServer {
 public:
  ControlServer(UniqueFd listener, ControlHandler* handler)
      : listener_(std::move(listener)), handler_(handler) {}
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Accepts until Close(). Each connection runs on a detached thread; at most kMaxConnections at once (the
  // rest are answered with an error), which bounds the shim's memory.
  void Serve();
  // Makes Serve() return.
  void Close();

  static constexpr int kMaxConnections = 64;

 private:
  void HandleConnection(UniqueFd conn);
  void ServeStreamingExec(int fd, const control::ExecRequest& request);
  // Runs the request's operation and fills the response; true when it was a successful Shutdown.
  bool Dispatch(const control::Request& req, int fd, control::Response* resp);

  UniqueFd listener_;
  ControlHandler* handler_;
  std::atomic<bool> closed_{false};
  std::atomic<int> active_{0};
};

}  // namespace nfc::shim
