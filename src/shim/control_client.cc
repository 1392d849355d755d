#include "shim/control_client.h"

#include <sys/socket.h>

#include "shim/control.pb.h"
#include "shim/control_codec.h"
#include "shim/wire.h"

namespace nfc::shim {
namespace {

// Sends `request` on a fresh connection and reads one response.
Result<control::Response> Call(const std::string& socket_path, control::Request request, int timeout_ms,
                               const std::function<bool()>& cancelled = nullptr,
                               UniqueFd* keep_fd = nullptr) {
  auto fd = ConnectUnix(socket_path);
  if (!fd.ok()) return std::move(fd).error().Context("task shim");
  request.set_version(control::PROTOCOL_VERSION_1);
  NFC_RETURN_IF_ERROR_CTX(WriteFrame(fd->get(), request), "task shim " + socket_path);
  control::Response response;
  Status read = ReadFrame(fd->get(), &response, timeout_ms, cancelled);
  if (!read.ok()) {
    Error e = std::move(read).error();
    if (e.code() == ErrorCode::kUnavailable) {
      return Error::Unavailable("task shim closed the connection without answering (it may have exited)");
    }
    return std::move(e).Context("task shim " + socket_path);
  }
  if (!response.error().empty()) return ErrorFromProto(response);
  if (keep_fd) *keep_fd = std::move(*fd);
  return response;
}

}  // namespace

Result<ExitResult> ControlClient::Wait(const std::function<bool()>& cancelled) const {
  control::Request req;
  req.mutable_wait();
  NFC_ASSIGN_OR_RETURN(auto resp, Call(socket_path_, std::move(req), -1, cancelled));
  if (!resp.has_wait()) return Error::Internal("task shim answered Wait with a different message");
  return FromProto(resp.wait().result());
}

Result<ExitResult> ControlClient::Stop(int signal, std::chrono::milliseconds timeout) const {
  control::Request req;
  req.mutable_stop()->set_signal(signal);
  req.mutable_stop()->set_timeout_millis(timeout.count());
  // The shim's own escalation bounds the call: timeout + graceful stop + hard stop. Allow generously beyond
  // it.
  int limit = static_cast<int>(timeout.count()) + 60000;
  NFC_ASSIGN_OR_RETURN(auto resp, Call(socket_path_, std::move(req), limit));
  if (!resp.has_stop()) return Error::Internal("task shim answered Stop with a different message");
  return FromProto(resp.stop().result());
}

Status ControlClient::Signal(int signal) const {
  control::Request req;
  req.mutable_signal()->set_signal(signal);
  NFC_ASSIGN_OR_RETURN(auto resp, Call(socket_path_, std::move(req), quick_timeout_ms));
  (void)resp;
  return Ok();
}

Result<ExecResult> ControlClient::Exec(const ExecRequest& request) const {
  control::Request req;
  ToProto(request, req.mutable_exec());
  int limit = request.timeout_millis > 0 ? static_cast<int>(request.timeout_millis) + 15000 : -1;
  NFC_ASSIGN_OR_RETURN(auto resp, Call(socket_path_, std::move(req), limit));
  if (!resp.has_exec()) return Error::Internal("task shim answered Exec with a different message");
  ExecResult r;
  r.stdout_data = resp.exec().stdout();
  r.stderr_data = resp.exec().stderr();
  r.result = FromProto(resp.exec().result());
  r.output_truncated = resp.exec().output_truncated();
  return r;
}

Result<std::unique_ptr<ShimExecClient>> ControlClient::ExecStreaming(const ExecRequest& request) const {
  control::Request req;
  ToProto(request, req.mutable_exec());
  req.mutable_exec()->set_streaming(true);
  UniqueFd fd;
  // The shim acknowledges the start of the session with an empty Response before streaming.
  NFC_ASSIGN_OR_RETURN(auto resp, Call(socket_path_, std::move(req), quick_timeout_ms + 20000, nullptr, &fd));
  (void)resp;
  return std::make_unique<ShimExecClient>(std::move(fd));
}

Result<StatsSample> ControlClient::Stats() const {
  control::Request req;
  req.mutable_stats();
  NFC_ASSIGN_OR_RETURN(auto resp, Call(socket_path_, std::move(req), quick_timeout_ms));
  if (!resp.has_stats()) return Error::Internal("task shim answered Stats with a different message");
  return FromProto(resp.stats());
}

Result<InspectInfo> ControlClient::Inspect() const {
  control::Request req;
  req.mutable_inspect();
  NFC_ASSIGN_OR_RETURN(auto resp, Call(socket_path_, std::move(req), quick_timeout_ms));
  if (!resp.has_inspect()) return Error::Internal("task shim answered Inspect with a different message");
  return FromProto(resp.inspect());
}

Status ControlClient::Shutdown() const {
  control::Request req;
  req.mutable_shutdown();
  NFC_ASSIGN_OR_RETURN(auto resp, Call(socket_path_, std::move(req), quick_timeout_ms + 30000));
  (void)resp;
  return Ok();
}

Status ShimExecClient::SendStdin(std::string_view data) {
  control::ExecInput in;
  in.set_stdin(std::string(data));
  return WriteFrame(fd_.get(), in);
}

Status ShimExecClient::CloseStdin() {
  control::ExecInput in;
  in.set_stdin_close(true);
  return WriteFrame(fd_.get(), in);
}

Status ShimExecClient::Resize(unsigned rows, unsigned cols) {
  if (rows == 0 || cols == 0) return Ok();
  control::ExecInput in;
  in.set_rows(rows);
  in.set_cols(cols);
  return WriteFrame(fd_.get(), in);
}

Result<ShimExecClient::Event> ShimExecClient::Next(const std::function<bool()>& cancelled) {
  // One wire frame may carry several facts (data and a close); hand them out one at a time, exit last.
  Event ev;
  if (!pending_stderr_.empty()) {
    ev.kind = Event::Kind::kStderr;
    ev.data = std::move(pending_stderr_);
    pending_stderr_.clear();
    return ev;
  }
  if (stdout_pending_close_) {
    stdout_pending_close_ = false;
    ev.kind = Event::Kind::kStdoutClosed;
    return ev;
  }
  if (stderr_pending_close_) {
    stderr_pending_close_ = false;
    ev.kind = Event::Kind::kStderrClosed;
    return ev;
  }
  if (exit_pending_) {
    exit_pending_ = false;
    ev.kind = Event::Kind::kExited;
    ev.result = pending_result_;
    return ev;
  }
  for (;;) {
    control::ExecOutput out;
    Status read = ReadFrame(fd_.get(), &out, -1, cancelled);
    if (!read.ok()) {
      Error e = std::move(read).error();
      if (e.code() == ErrorCode::kUnavailable)
        return Error::Unavailable("task shim ended the exec session early");
      return e;
    }
    if (!out.error().empty()) return Error::Internal(out.error());
    stdout_pending_close_ = out.stdout_closed();
    stderr_pending_close_ = out.stderr_closed();
    if (out.exited()) {
      exit_pending_ = true;
      pending_result_ = FromProto(out.result());
    }
    if (!out.stdout().empty()) {
      pending_stderr_ = out.stderr();
      ev.kind = Event::Kind::kStdout;
      ev.data = out.stdout();
      return ev;
    }
    if (!out.stderr().empty()) {
      ev.kind = Event::Kind::kStderr;
      ev.data = out.stderr();
      return ev;
    }
    if (stdout_pending_close_ || stderr_pending_close_ || exit_pending_) return Next(cancelled);
    // An empty frame (keep-alive): read on.
  }
}

void ShimExecClient::Cancel() {
  if (fd_) ::shutdown(fd_.get(), SHUT_RDWR);
}

}  // namespace nfc::shim
