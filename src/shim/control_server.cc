#include "shim/control_server.h"

#include <poll.h>
#include <sys/socket.h>

#include <mutex>
#include <thread>

#include "base/log.h"
#include "shim/control.pb.h"
#include "shim/control_codec.h"
#include "shim/wire.h"

namespace nfc::shim {
namespace {

// True once the peer closed its end (or sent something it should not have while we work on its request).
bool PeerGone(int fd) {
  struct pollfd pfd = {fd, POLLIN | POLLRDHUP, 0};
  int r = ::poll(&pfd, 1, 0);
  return r > 0 && (pfd.revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR));
}

// Output may be written from several threads (stdout and stderr pumps); frames must not interleave.
class SocketExecServer : public ShimExecServer {
 public:
  explicit SocketExecServer(int fd) : fd_(fd) {}

  Result<std::optional<Input>> ReadInput(int timeout_ms) override {
    control::ExecInput in;
    Status read = ReadFrame(fd_, &in, timeout_ms);
    if (!read.ok()) {
      if (read.error().code() == ErrorCode::kTimeout) return std::optional<Input>();
      return Error::Unavailable("exec client went away: " + read.error().message());
    }
    Input out;
    out.stdin_data = in.stdin();
    out.stdin_close = in.stdin_close();
    out.rows = in.rows();
    out.cols = in.cols();
    return std::optional<Input>(std::move(out));
  }
  Status WriteStdout(std::string_view data) override {
    control::ExecOutput out;
    out.set_stdout(std::string(data));
    return Send(out);
  }
  Status WriteStderr(std::string_view data) override {
    control::ExecOutput out;
    out.set_stderr(std::string(data));
    return Send(out);
  }
  Status CloseStdout() override {
    control::ExecOutput out;
    out.set_stdout_closed(true);
    return Send(out);
  }
  Status CloseStderr() override {
    control::ExecOutput out;
    out.set_stderr_closed(true);
    return Send(out);
  }
  Status WriteExit(const ExitResult& result) override {
    control::ExecOutput out;
    out.set_exited(true);
    ToProto(result, out.mutable_result());
    return Send(out);
  }
  int input_fd() const override { return fd_; }

 private:
  Status Send(const control::ExecOutput& out) {
    std::lock_guard<std::mutex> lock(write_mu_);
    return WriteFrame(fd_, out);
  }
  int fd_;
  std::mutex write_mu_;
};

}  // namespace

void ControlServer::Serve() {
  while (!closed_.load()) {
    struct pollfd pfd = {listener_.get(), POLLIN, 0};
    int r = ::poll(&pfd, 1, 500);
    if (r <= 0) continue;
    UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) continue;
    if (active_.load() >= kMaxConnections) {
      control::Response busy;
      ToProto(Error(ErrorCode::kResourceExhausted, "task shim: too many concurrent control connections"),
              &busy);
      (void)WriteFrame(conn.get(), busy);
      continue;
    }
    active_++;
    std::thread([this, c = std::move(conn)]() mutable {
      HandleConnection(std::move(c));
      active_--;
    }).detach();
  }
}

void ControlServer::Close() {
  closed_.store(true);
}

namespace {

// Sets the body on success, the error otherwise.
template <typename T, typename SetBody>
void Answer(const Result<T>& r, control::Response* resp, SetBody set_body) {
  if (r.ok()) {
    set_body(*r);
  } else {
    resp->Clear();
    ToProto(r.error(), resp);
  }
}

void AnswerStatus(const Status& s, control::Response* resp, const std::function<void()>& set_body) {
  if (s.ok()) {
    set_body();
  } else {
    resp->Clear();
    ToProto(s.error(), resp);
  }
}

}  // namespace

// One connection, one request, one response (written even when the peer may be gone: best effort by design);
// a streaming exec takes the connection over instead.
void ControlServer::HandleConnection(UniqueFd conn) {
  int fd = conn.get();
  control::Request req;
  if (Status read = ReadFrame(fd, &req, 10000); !read.ok()) {
    if (read.error().code() != ErrorCode::kUnavailable) {
      log::Warn("control: bad request", {{"error", read.error().message()}});
      control::Response resp;
      ToProto(Error::InvalidArgument("malformed control request: " + read.error().message()), &resp);
      (void)WriteFrame(fd, resp);
    }
    return;
  }
  control::Response resp;
  if (req.version() != control::PROTOCOL_VERSION_1) {
    ToProto(
        Error::FailedPrecondition("task shim speaks control protocol version 1, the request uses version " +
                                  std::to_string(static_cast<int>(req.version()))),
        &resp);
    (void)WriteFrame(fd, resp);
    return;
  }
  if (req.op_case() == control::Request::kExec && req.exec().streaming() && !req.exec().argv().empty()) {
    ServeStreamingExec(fd, req.exec());
    return;
  }
  bool shutdown = Dispatch(req, fd, &resp);
  (void)WriteFrame(fd, resp);
  if (shutdown) handler_->AfterShutdownReply();
}

void ControlServer::ServeStreamingExec(int fd, const control::ExecRequest& request) {
  // Acknowledge, then the connection becomes the session's stream.
  (void)WriteFrame(fd, control::Response());
  SocketExecServer session(fd);
  Status s = handler_->ExecStreaming(FromProto(request), session);
  if (!s.ok()) {
    control::ExecOutput out;
    out.set_error(s.error().message());
    (void)WriteFrame(fd, out);
  }
}

bool ControlServer::Dispatch(const control::Request& req, int fd, control::Response* resp) {
  switch (req.op_case()) {
    case control::Request::kWait:
      Answer(handler_->Wait([fd] { return PeerGone(fd); }), resp,
             [&](const ExitResult& r) { ToProto(r, resp->mutable_wait()->mutable_result()); });
      return false;
    case control::Request::kStop:
      Answer(handler_->Stop(req.stop().signal(), std::chrono::milliseconds(req.stop().timeout_millis())),
             resp, [&](const ExitResult& r) { ToProto(r, resp->mutable_stop()->mutable_result()); });
      return false;
    case control::Request::kSignal:
      AnswerStatus(handler_->Signal(req.signal().signal()), resp, [&] { resp->mutable_signal(); });
      return false;
    case control::Request::kExec:
      if (req.exec().argv().empty()) {
        ToProto(Error::InvalidArgument("exec: empty command"), resp);
        return false;
      }
      Answer(handler_->Exec(FromProto(req.exec())), resp, [&](const ExecResult& r) {
        auto* e = resp->mutable_exec();
        e->set_stdout(r.stdout_data);
        e->set_stderr(r.stderr_data);
        e->set_output_truncated(r.output_truncated);
        ToProto(r.result, e->mutable_result());
      });
      return false;
    case control::Request::kStats:
      Answer(handler_->Stats(), resp, [&](const StatsSample& s) { ToProto(s, resp->mutable_stats()); });
      return false;
    case control::Request::kInspect:
      ToProto(handler_->Inspect(), resp->mutable_inspect());
      return false;
    case control::Request::kShutdown: {
      Status s = handler_->Shutdown();
      AnswerStatus(s, resp, [&] { resp->mutable_shutdown(); });
      return s.ok();
    }
    case control::Request::OP_NOT_SET:
      break;
  }
  ToProto(Error::InvalidArgument("control request names no operation (newer client?)"), resp);
  return false;
}

}  // namespace nfc::shim
