// The RPC layer against a scripted TaskManager, over a real gRPC server on a unix socket: what the Nomad
// client relies on that the Go harness cannot reach yet (lifecycle delegation, WaitTask cancellation, exec
// streaming).
#include "driver/rpc/services.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "driver/test_util.h"

namespace nfc::driver::rpc {
namespace {

constexpr char kAlpineConfig[] = "81 a5 69 6d 61 67 65 a6 61 6c 70 69 6e 65";  // {"image": "alpine"}

// Echoes stdin to stdout; exits with status 3 when stdin closes.
class EchoSession final : public RpcExecSession {
 public:
  explicit EchoSession(std::atomic<bool>* cancelled_flag) : cancelled_flag_(cancelled_flag) {}
  Status SendStdin(std::string_view data) override {
    Push({Event::Kind::kStdout, std::string(data), {}});
    return Ok();
  }
  Status CloseStdin() override {
    Push({Event::Kind::kStdoutClosed, "", {}});
    Push({Event::Kind::kExited, "", ExitResult{.exit_code = 3}});
    return Ok();
  }
  Status Resize(unsigned rows, unsigned cols) override {
    std::lock_guard lock(mu_);
    last_size_ = {rows, cols};
    return Ok();
  }
  Result<Event> Next(const CancelledFn& cancelled) override {
    std::unique_lock lock(mu_);
    for (;;) {
      if (!events_.empty()) {
        Event e = std::move(events_.front());
        events_.erase(events_.begin());
        return e;
      }
      if (cancelled() || cancelled_flag_->load()) return Error(ErrorCode::kCancelled, "cancelled");
      cv_.wait_for(lock, std::chrono::milliseconds(20));
    }
  }
  void Cancel() override {
    cancelled_flag_->store(true);
    cv_.notify_all();
  }

 private:
  void Push(Event e) {
    std::lock_guard lock(mu_);
    events_.push_back(std::move(e));
    cv_.notify_all();
  }
  std::atomic<bool>* cancelled_flag_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Event> events_;
  std::pair<unsigned, unsigned> last_size_;
};

class ScriptedTasks final : public TaskManager {
 public:
  Status Configure(const PluginConfig&) override { return Ok(); }
  Status Init() override { return Ok(); }
  Result<StartedTask> StartTask(const NomadTask& task, const TaskConfig& config) override {
    starts++;
    {
      std::lock_guard lock(mu);
      last_image = config.image;
    }
    if (task.name == "flaky") return Error::Unavailable("registry unreachable");
    StartedTask started;
    started.handle.config = task;
    started.handle.state = TaskState::kRunning;
    started.handle.driver_state = "state-of-" + task.id;
    return started;
  }
  Status RecoverTask(const TaskHandle&) override { return Ok(); }
  Result<ExitResult> WaitTask(const std::string& id, const CancelledFn& cancelled) override {
    if (id == "unknown") return Error::NotFound("task " + id + " not found");
    while (!cancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    wait_saw_cancel = true;
    return Error(ErrorCode::kCancelled, "cancelled");
  }
  Status StopTask(const std::string&, std::chrono::milliseconds timeout, const std::string& signal) override {
    last_stop_timeout = timeout;
    last_stop_signal = signal;
    return Ok();
  }
  Status DestroyTask(const std::string&, bool) override { return Ok(); }
  Result<TaskInspection> InspectTask(const std::string& id) override {
    TaskInspection i;
    i.id = id;
    i.state = TaskState::kRunning;
    i.started_at = std::chrono::system_clock::now();
    return i;
  }
  Status SignalTask(const std::string&, const std::string&) override { return Ok(); }
  Result<ExecOutput> ExecTask(const std::string&, const std::vector<std::string>&,
                              std::chrono::milliseconds) override {
    return ExecOutput{"out", "err", ExitResult{.exit_code = 1}};
  }
  Status StreamTaskStats(const std::string&, std::chrono::milliseconds,
                         const std::function<bool(const TaskStatsSample&)>&, const CancelledFn&) override {
    return Ok();
  }
  Result<std::unique_ptr<RpcExecSession>> ExecStreaming(const std::string& id,
                                                        const std::vector<std::string>& argv, bool, unsigned,
                                                        unsigned) override {
    if (id == "unknown") return Error::NotFound("task unknown not found");
    last_exec_argv = argv;
    return std::unique_ptr<RpcExecSession>(new EchoSession(&exec_cancelled));
  }
  Capabilities capabilities() const override { return {.send_signals = true, .exec = true}; }

  std::atomic<int> starts{0};
  std::mutex mu;
  std::string last_image;  // guarded by mu: the decoded task config reached the task manager
  std::atomic<bool> wait_saw_cancel{false};
  std::atomic<bool> exec_cancelled{false};
  std::chrono::milliseconds last_stop_timeout{0};
  std::string last_stop_signal;
  std::vector<std::string> last_exec_argv;
};

class ServicesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tasks = std::make_unique<ScriptedTasks>();
    tasks_ = tasks.get();
    driver_ = std::make_unique<Driver>("fc", std::move(tasks));
    base_ = std::make_unique<BasePluginService>(driver_.get());
    service_ = std::make_unique<DriverService>(driver_.get(), &stop_);
    socket_ = "/tmp/nfc-services-test-" + std::to_string(getpid());
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + socket_, grpc::InsecureServerCredentials());
    builder.RegisterService(base_.get());
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ =
        drvpb::Driver::NewStub(grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    stop_.Trigger();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    server_->Wait();
    unlink(socket_.c_str());
  }

  drvpb::StartTaskRequest StartRequest(const std::string& name, const std::string& config_hex) {
    drvpb::StartTaskRequest req;
    req.mutable_task()->set_id("alloc/" + name + "/1234");
    req.mutable_task()->set_name(name);
    req.mutable_task()->set_msgpack_driver_config(testing::Hex(config_hex));
    (*req.mutable_task()->mutable_env())["NOMAD_TASK_NAME"] = name;
    return req;
  }

  plugin::StopSignal stop_;
  ScriptedTasks* tasks_ = nullptr;
  std::unique_ptr<Driver> driver_;
  std::unique_ptr<BasePluginService> base_;
  std::unique_ptr<DriverService> service_;
  std::string socket_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<drvpb::Driver::Stub> stub_;
};

TEST_F(ServicesTest, StartTaskValidatesConfigBeforeDelegating) {
  grpc::ClientContext ctx;
  drvpb::StartTaskResponse resp;
  grpc::Status s = stub_->StartTask(&ctx, StartRequest("web", "81 a5 69 6d 61 67 65 c0"), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("\"image\""), std::string::npos) << s.error_message();
  EXPECT_EQ(tasks_->starts.load(), 0);
}

TEST_F(ServicesTest, StartTaskEchoesTheConfigInTheHandle) {
  grpc::ClientContext ctx;
  drvpb::StartTaskResponse resp;
  ASSERT_TRUE(stub_->StartTask(&ctx, StartRequest("web", kAlpineConfig), &resp).ok());
  EXPECT_GE(resp.handle().version(), 1);
  EXPECT_EQ(resp.handle().config().id(), "alloc/web/1234");
  EXPECT_EQ(resp.handle().config().env().at("NOMAD_TASK_NAME"), "web");
  EXPECT_EQ(resp.handle().config().msgpack_driver_config(), testing::Hex(kAlpineConfig));
  EXPECT_EQ(resp.handle().state(), drvpb::RUNNING);
  EXPECT_EQ(resp.handle().driver_state(), "state-of-alloc/web/1234");
  std::lock_guard lock(tasks_->mu);
  EXPECT_EQ(tasks_->last_image, "alpine");
}

TEST_F(ServicesTest, TransientStartFailureIsRecoverable) {
  grpc::ClientContext ctx;
  drvpb::StartTaskResponse resp;
  grpc::Status s = stub_->StartTask(&ctx, StartRequest("flaky", kAlpineConfig), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_details().find("RecoverableError"), std::string::npos);
}

TEST_F(ServicesTest, WaitTaskCancellationReachesTheManager) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(300));
  drvpb::WaitTaskRequest req;
  req.set_task_id("alloc/web/1234");
  drvpb::WaitTaskResponse resp;
  grpc::Status s = stub_->WaitTask(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  for (int i = 0; i < 100 && !tasks_->wait_saw_cancel; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(tasks_->wait_saw_cancel);

  grpc::ClientContext unknown_ctx;
  req.set_task_id("unknown");
  EXPECT_EQ(stub_->WaitTask(&unknown_ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ServicesTest, StopTaskPassesTimeoutAndSignal) {
  grpc::ClientContext ctx;
  drvpb::StopTaskRequest req;
  req.set_task_id("t");
  req.mutable_timeout()->set_seconds(5);
  req.mutable_timeout()->set_nanos(250000000);
  req.set_signal("SIGINT");
  drvpb::StopTaskResponse resp;
  ASSERT_TRUE(stub_->StopTask(&ctx, req, &resp).ok());
  EXPECT_EQ(tasks_->last_stop_timeout, std::chrono::milliseconds(5250));
  EXPECT_EQ(tasks_->last_stop_signal, "SIGINT");
}

TEST_F(ServicesTest, InspectAndExecAlwaysCarryWhatTheClientDereferences) {
  grpc::ClientContext ctx;
  drvpb::InspectTaskRequest req;
  req.set_task_id("t");
  drvpb::InspectTaskResponse resp;
  ASSERT_TRUE(stub_->InspectTask(&ctx, req, &resp).ok());
  EXPECT_TRUE(resp.task().has_started_at());
  EXPECT_TRUE(resp.task().has_completed_at());
  grpc::ClientContext ectx;
  drvpb::ExecTaskRequest ereq;
  ereq.set_task_id("t");
  ereq.add_command("true");
  drvpb::ExecTaskResponse eresp;
  ASSERT_TRUE(stub_->ExecTask(&ectx, ereq, &eresp).ok());
  EXPECT_TRUE(eresp.has_result());
  EXPECT_EQ(eresp.result().exit_code(), 1);
  EXPECT_EQ(eresp.stdout(), "out");
}

TEST_F(ServicesTest, CapabilitiesFollowTheManager) {
  grpc::ClientContext ctx;
  drvpb::CapabilitiesResponse resp;
  ASSERT_TRUE(stub_->Capabilities(&ctx, drvpb::CapabilitiesRequest(), &resp).ok());
  EXPECT_TRUE(resp.capabilities().send_signals());
  EXPECT_TRUE(resp.capabilities().exec());
  EXPECT_EQ(resp.capabilities().fs_isolation(), drvpb::DriverCapabilities::IMAGE);
  EXPECT_EQ(resp.capabilities().mount_configs(), drvpb::DriverCapabilities::NO_MOUNTS);
}

TEST_F(ServicesTest, TaskEventsReachTheStream) {
  grpc::ClientContext ctx;
  auto reader = stub_->TaskEvents(&ctx, drvpb::TaskEventsRequest());
  for (int i = 0; i < 100 && driver_->events().subscribers() == 0; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  driver_->events().Publish({.task_id = "t",
                             .alloc_id = "a",
                             .task_name = "web",
                             .message = "Booting VM",
                             .annotations = {{"backend", "qemu"}}});
  drvpb::DriverTaskEvent event;
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.message(), "Booting VM");
  EXPECT_EQ(event.alloc_id(), "a");
  EXPECT_EQ(event.annotations().at("backend"), "qemu");
  EXPECT_TRUE(event.has_timestamp());
  ctx.TryCancel();
}

// Reference 6: setup first, heartbeats ignored, output frames, a separate final `exited` frame, then OK, all
// without the client ever half-closing (Nomad v2.0.5 never does).
TEST_F(ServicesTest, ExecStreamingEchoAndSeparateExitFrame) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = stub_->ExecTaskStreaming(&ctx);
  drvpb::ExecTaskStreamingRequest setup;
  setup.mutable_setup()->set_task_id("t");
  setup.mutable_setup()->add_command("/bin/cat");
  ASSERT_TRUE(stream->Write(setup));
  ASSERT_TRUE(stream->Write(drvpb::ExecTaskStreamingRequest()));  // heartbeat
  drvpb::ExecTaskStreamingRequest input;
  input.mutable_stdin()->set_data("hello");
  ASSERT_TRUE(stream->Write(input));
  drvpb::ExecTaskStreamingRequest size;
  size.mutable_tty_size()->set_height(24);
  size.mutable_tty_size()->set_width(80);
  ASSERT_TRUE(stream->Write(size));
  drvpb::ExecTaskStreamingRequest close;
  close.mutable_stdin()->set_close(true);
  ASSERT_TRUE(stream->Write(close));

  std::string out;
  bool exited = false, stdout_closed = false;
  drvpb::ExecTaskStreamingResponse frame;
  while (stream->Read(&frame)) {
    if (frame.exited()) {
      EXPECT_FALSE(frame.has_stdout()) << "exit must be its own frame";
      ASSERT_TRUE(frame.has_result());
      EXPECT_EQ(frame.result().exit_code(), 3);
      exited = true;
    } else {
      EXPECT_FALSE(exited) << "no frames after the exit frame";
      out += frame.stdout().data();
      if (frame.stdout().close()) stdout_closed = true;
    }
  }
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(out, "hello");
  EXPECT_TRUE(stdout_closed);
  EXPECT_TRUE(exited);
  EXPECT_EQ(tasks_->last_exec_argv, std::vector<std::string>{"/bin/cat"});
}

TEST_F(ServicesTest, ExecStreamingCancelReachesTheSession) {
  grpc::ClientContext ctx;
  auto stream = stub_->ExecTaskStreaming(&ctx);
  drvpb::ExecTaskStreamingRequest setup;
  setup.mutable_setup()->set_task_id("t");
  setup.mutable_setup()->add_command("sleep");
  ASSERT_TRUE(stream->Write(setup));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ctx.TryCancel();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  for (int i = 0; i < 100 && !tasks_->exec_cancelled; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(tasks_->exec_cancelled);
}

TEST_F(ServicesTest, ExecStreamingErrors) {
  {
    grpc::ClientContext ctx;
    auto stream = stub_->ExecTaskStreaming(&ctx);
    drvpb::ExecTaskStreamingRequest not_setup;
    not_setup.mutable_stdin()->set_data("x");
    ASSERT_TRUE(stream->Write(not_setup));
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    grpc::ClientContext ctx;
    auto stream = stub_->ExecTaskStreaming(&ctx);
    drvpb::ExecTaskStreamingRequest setup;
    setup.mutable_setup()->set_task_id("unknown");
    setup.mutable_setup()->add_command("sh");
    ASSERT_TRUE(stream->Write(setup));
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  }
}

}  // namespace
}  // namespace nfc::driver::rpc
