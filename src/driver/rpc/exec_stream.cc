#include "driver/rpc/exec_stream.h"

#include <atomic>
#include <deque>
#include <mutex>
#include <thread>

#include "base/log.h"
#include "driver/rpc/status.h"
#include "driver/rpc/task_proto.h"

namespace nfc::driver::rpc {
namespace {

namespace pb = hashicorp::nomad::plugins::drivers::proto;

class ExecStreamReactor final : public ExecReactor {
 public:
  ExecStreamReactor(TaskManager* tasks, const plugin::StopSignal* stop) : tasks_(tasks), stop_(stop) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The client half-closed or went away. Output keeps flowing until the session ends; without a session
      // there is nothing to wait for.
      if (!started_)
        FinishOnce(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "ExecTaskStreaming: no setup"));
      return;
    }
    if (!started_) {
      started_ = true;
      if (!request_.has_setup() || request_.setup().task_id().empty() || request_.setup().command().empty()) {
        FinishOnce(
            grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                         "ExecTaskStreaming: the first message must be a setup with task_id and command"));
        return;
      }
      const auto& setup = request_.setup();
      unsigned rows = 0, cols = 0;
      if (request_.has_tty_size()) {
        rows = static_cast<unsigned>(std::max(0, request_.tty_size().height()));
        cols = static_cast<unsigned>(std::max(0, request_.tty_size().width()));
      }
      Result<std::unique_ptr<RpcExecSession>> session = tasks_->ExecStreaming(
          setup.task_id(), std::vector<std::string>(setup.command().begin(), setup.command().end()),
          setup.tty(), rows, cols);
      if (!session.ok()) {
        FinishOnce(ToGrpcStatus(session.error()));
        return;
      }
      {
        std::lock_guard lock(mu_);
        if (finished_.load()) {  // cancelled while the session was being set up
          (*session)->Cancel();
          return;
        }
        session_ = std::move(*session);
      }
      pump_ = std::thread([this] { Pump(); });
    } else if (RpcExecSession* session = Session()) {
      // Heartbeats (none of setup/tty_size/stdin set) need no action.
      Status s = Ok();
      if (request_.has_tty_size()) {
        s = session->Resize(static_cast<unsigned>(std::max(0, request_.tty_size().height())),
                            static_cast<unsigned>(std::max(0, request_.tty_size().width())));
      }
      if (s.ok() && request_.has_stdin()) {
        if (!request_.stdin().data().empty()) s = session->SendStdin(request_.stdin().data());
        if (s.ok() && request_.stdin().close()) s = session->CloseStdin();
      }
      if (!s.ok()) log::Debug("exec input not delivered", {{"error", s.error().message()}});
    }
    std::lock_guard ops(ops_mu_);
    if (!finished_) StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock lock(mu_);
    writing_ = false;
    if (!ok) {
      lock.unlock();
      Cancelled();
      return;
    }
    WriteNextLocked(lock);
  }

  void OnCancel() override { Cancelled(); }

  void OnDone() override {
    cancelled_ = true;  // Finish was called, so the pump (if any) is done or about to return
    if (pump_.joinable()) pump_.join();
    delete this;
  }

 private:
  RpcExecSession* Session() {
    std::lock_guard lock(mu_);
    return session_.get();
  }

  void Cancelled() {
    cancelled_ = true;
    bool have_session;
    {
      std::lock_guard lock(mu_);
      have_session = session_ != nullptr;
      if (have_session) session_->Cancel();
    }
    // With a session, the pump ends it and finishes the call; without one, nobody else will.
    if (!have_session) FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "exec cancelled"));
  }

  // Pulls output until the session ends; each event becomes one frame, the exit its own final frame.
  void Pump() {
    const CancelledFn cancelled = [this] { return cancelled_.load() || stop_->triggered(); };
    for (;;) {
      Result<RpcExecSession::Event> event = session_->Next(cancelled);
      if (!event.ok()) {
        Enqueue(std::nullopt, event.error().code() == ErrorCode::kCancelled
                                  ? grpc::Status(grpc::StatusCode::CANCELLED, "exec cancelled")
                                  : ToGrpcStatus(event.error()));
        return;
      }
      pb::ExecTaskStreamingResponse frame;
      switch (event->kind) {
        case RpcExecSession::Event::Kind::kStdout:
          frame.mutable_stdout()->set_data(std::move(event->data));
          break;
        case RpcExecSession::Event::Kind::kStderr:
          frame.mutable_stderr()->set_data(std::move(event->data));
          break;
        case RpcExecSession::Event::Kind::kStdoutClosed:
          frame.mutable_stdout()->set_close(true);
          break;
        case RpcExecSession::Event::Kind::kStderrClosed:
          frame.mutable_stderr()->set_close(true);
          break;
        case RpcExecSession::Event::Kind::kExited:
          frame.set_exited(true);
          ExitResultToProto(event->result, frame.mutable_result());
          Enqueue(std::move(frame), grpc::Status::OK);
          return;
      }
      Enqueue(std::move(frame), std::nullopt);
    }
  }

  // Queues a frame and/or the final status; writes go out one at a time, the status after the last frame.
  void Enqueue(std::optional<pb::ExecTaskStreamingResponse> frame, std::optional<grpc::Status> final_status) {
    std::unique_lock lock(mu_);
    if (frame) queue_.push_back(std::move(*frame));
    if (final_status) final_status_ = std::move(final_status);
    WriteNextLocked(lock);
  }

  void WriteNextLocked(std::unique_lock<std::mutex>& lock) {
    if (writing_ || finished_) return;
    if (!queue_.empty()) {
      current_ = std::move(queue_.front());
      queue_.pop_front();
      writing_ = true;
      lock.unlock();
      std::lock_guard ops(ops_mu_);
      if (!finished_) StartWrite(&current_);
      return;
    }
    if (final_status_) {
      grpc::Status status = *final_status_;
      lock.unlock();
      FinishOnce(status);
    }
  }

  // Finish and the Start* calls are serialized by ops_mu_, so no operation starts after Finish.
  void FinishOnce(const grpc::Status& status) {
    std::lock_guard ops(ops_mu_);
    if (finished_.exchange(true)) return;
    Finish(status);
  }

  TaskManager* tasks_;
  const plugin::StopSignal* stop_;
  pb::ExecTaskStreamingRequest request_;  // only touched by the read callbacks, which never overlap
  bool started_ = false;                  // read callbacks only
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> finished_{false};
  std::thread pump_;

  std::mutex ops_mu_;  // serializes StartRead/StartWrite/Finish; never held while waiting for anything
  std::mutex mu_;
  std::unique_ptr<RpcExecSession> session_;          // guarded by mu_ (set once, before the pump starts)
  std::deque<pb::ExecTaskStreamingResponse> queue_;  // guarded by mu_
  pb::ExecTaskStreamingResponse current_;            // the frame being written; guarded by writing_
  bool writing_ = false;                             // guarded by mu_
  std::optional<grpc::Status> final_status_;         // guarded by mu_
};

}  // namespace

ExecReactor* NewExecReactor(TaskManager* tasks, const plugin::StopSignal* stop) {
  return new ExecStreamReactor(tasks, stop);
}

}  // namespace nfc::driver::rpc
