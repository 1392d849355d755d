// The control protocol end to end over a real unix socket, with a fake task behind the server.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "shim/control.pb.h"
#include "shim/control_client.h"
#include "shim/control_server.h"
#include "shim/wire.h"
#include "temp_dir.h"

namespace nfc::shim {
namespace {

class FakeTask : public ControlHandler {
 public:
  void Finish(const ExitResult& r) {
    std::lock_guard<std::mutex> lock(mu_);
    result_ = r;
    exited_ = true;
    cv_.notify_all();
  }
  Result<ExitResult> Wait(const std::function<bool()>& client_gone) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (!exited_) {
      blocked_waiters_++;
      cv_.notify_all();
    }
    while (!exited_) {
      if (client_gone()) {
        gone_waiters_++;
        return Error(ErrorCode::kCancelled, "client gone");
      }
      cv_.wait_for(lock, std::chrono::milliseconds(20));
    }
    return result_;
  }
  // True once n Wait calls are blocked on a task that has not exited; false after `limit`.
  bool AwaitBlockedWaiters(int n, std::chrono::seconds limit) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return blocked_waiters_ >= n; });
  }
  Result<ExitResult> Stop(int signal, std::chrono::milliseconds) override {
    Finish({128 + signal, signal, false, "", 1});
    return result_;
  }
  Status Signal(int signal) override {
    if (signal <= 0) return Error::InvalidArgument("bad signal " + std::to_string(signal));
    last_signal_ = signal;
    return Ok();
  }
  Result<ExecResult> Exec(const ExecRequest& r) override {
    ExecResult out;
    for (const auto& a : r.argv) out.stdout_data += a + " ";
    out.stderr_data = r.tty ? "tty" : "notty";
    out.result.exit_code = 7;
    return out;
  }
  Status ExecStreaming(const ExecRequest& r, ShimExecServer& s) override {
    if (r.argv[0] == "fail") return Error::NotFound("no such command: fail");
    // Echo stdin to stdout until stdin closes; resizes are reported on stderr.
    for (;;) {
      auto in = s.ReadInput(5000);
      if (!in.ok()) return in.error();
      if (!in->has_value()) continue;
      const auto& i = **in;
      if (i.rows) NFC_RETURN_IF_ERROR(s.WriteStderr(std::to_string(i.rows) + "x" + std::to_string(i.cols)));
      if (!i.stdin_data.empty()) NFC_RETURN_IF_ERROR(s.WriteStdout(i.stdin_data));
      if (i.stdin_close) break;
    }
    NFC_RETURN_IF_ERROR(s.CloseStdout());
    NFC_RETURN_IF_ERROR(s.CloseStderr());
    return s.WriteExit({3, 0, false, "", 0});
  }
  Result<StatsSample> Stats() override {
    StatsSample s;
    s.guest_available = true;
    s.guest_cpu_user_nanos = 42;
    s.vmm_rss_bytes = 1 << 20;
    return s;
  }
  InspectInfo Inspect() override {
    InspectInfo i;
    i.state = exited_ ? TaskState::kExited : TaskState::kRunning;
    i.guest_boot_id = "boot-1";
    i.exited = exited_;
    i.result = result_;
    return i;
  }
  Status Shutdown() override { return Ok(); }
  void AfterShutdownReply() override { shutdown_ = true; }

  std::mutex mu_;
  std::condition_variable cv_;
  bool exited_ = false;
  int blocked_waiters_ = 0;  // Wait calls that arrived before the exit
  ExitResult result_;
  std::atomic<int> last_signal_{0};
  std::atomic<int> gone_waiters_{0};
  std::atomic<bool> shutdown_{false};
};

class ControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);
    path_ = dir_.Path("control.sock");
    auto listener = ListenUnix(path_);
    ASSERT_TRUE(listener.ok()) << listener.error().message();
    server_ = std::make_unique<ControlServer>(std::move(*listener), &task_);
    serve_ = std::thread([this] { server_->Serve(); });
  }
  void TearDown() override {
    server_->Close();
    serve_.join();
  }
  FakeTask task_;
  test_support::TempDir dir_{"ctl"};
  std::string path_;
  std::unique_ptr<ControlServer> server_;
  std::thread serve_;
};

TEST_F(ControlTest, EveryConcurrentWaiterGetsTheResult) {
  ControlClient client(path_);
  std::vector<std::future<Result<ExitResult>>> waiters;
  constexpr int kWaiters = 5;
  waiters.reserve(kWaiters);
  for (int i = 0; i < kWaiters; i++)
    waiters.push_back(std::async(std::launch::async, [&] { return client.Wait(); }));
  // Every waiter must be blocked in the shim before the task exits, or this tests the already-exited path.
  // (EXPECT, not ASSERT: the waiters must still be released below, or their futures would hang the test.)
  EXPECT_TRUE(task_.AwaitBlockedWaiters(kWaiters, std::chrono::seconds(30)))
      << "not every Wait reached the shim within 30 s";
  for (auto& w : waiters)
    EXPECT_EQ(w.wait_for(std::chrono::seconds(0)), std::future_status::timeout) << "a Wait returned early";
  task_.Finish({3, 0, true, "", 99});
  for (auto& w : waiters) {
    auto r = w.get();
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->exit_code, 3);
    EXPECT_TRUE(r->oom_killed);
    EXPECT_EQ(r->completed_at_unix_nanos, 99);
  }
}

TEST_F(ControlTest, CancelledWaitEndsOnBothSides) {
  ControlClient client(path_);
  std::atomic<bool> cancel{false};
  auto w = std::async(std::launch::async, [&] { return client.Wait([&] { return cancel.load(); }); });
  EXPECT_TRUE(task_.AwaitBlockedWaiters(1, std::chrono::seconds(30))) << "the Wait never reached the shim";
  cancel = true;
  auto r = w.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kCancelled);
  for (int i = 0; i < 100 && task_.gone_waiters_ == 0; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(task_.gone_waiters_, 1) << "the shim must notice the caller left and free its thread";
}

TEST_F(ControlTest, SignalStopInspectStats) {
  ControlClient client(path_);
  ASSERT_TRUE(client.Signal(1).ok());
  EXPECT_EQ(task_.last_signal_, 1);
  Status bad = client.Signal(0);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.error().message().find("bad signal 0"), std::string::npos);

  auto stats = client.Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->guest_cpu_user_nanos, 42u);
  EXPECT_EQ(stats->vmm_rss_bytes, 1u << 20);

  auto before = client.Inspect();
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->state, TaskState::kRunning);
  EXPECT_EQ(before->guest_boot_id, "boot-1");
  EXPECT_FALSE(before->exited);

  auto stopped = client.Stop(15, std::chrono::milliseconds(100));
  ASSERT_TRUE(stopped.ok());
  EXPECT_EQ(stopped->exit_code, 143);
  auto after = client.Inspect();
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->exited);
  EXPECT_EQ(after->result.signal, 15);
}

TEST_F(ControlTest, ExecOnce) {
  ControlClient client(path_);
  auto r = client.Exec({{"echo", "hi"}, true, 24, 80, 1000});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->stdout_data, "echo hi ");
  EXPECT_EQ(r->stderr_data, "tty");
  EXPECT_EQ(r->result.exit_code, 7);
  auto empty = client.Exec({});
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message().find("empty command"), std::string::npos);
}

TEST_F(ControlTest, ExecStreamingRelaysInputOutputResizeAndExit) {
  ControlClient client(path_);
  auto s = client.ExecStreaming({{"cat"}, true, 0, 0, 0});
  ASSERT_TRUE(s.ok()) << s.error().message();
  auto& stream = **s;
  ASSERT_TRUE(stream.Resize(40, 120).ok());
  ASSERT_TRUE(stream.SendStdin("abc").ok());
  ASSERT_TRUE(stream.CloseStdin().ok());
  std::string out, err;
  bool out_closed = false, err_closed = false;
  for (;;) {
    auto ev = stream.Next();
    ASSERT_TRUE(ev.ok()) << ev.error().message();
    using K = ShimExecClient::Event::Kind;
    if (ev->kind == K::kStdout) out += ev->data;
    if (ev->kind == K::kStderr) err += ev->data;
    if (ev->kind == K::kStdoutClosed) out_closed = true;
    if (ev->kind == K::kStderrClosed) err_closed = true;
    if (ev->kind == K::kExited) {
      EXPECT_EQ(ev->result.exit_code, 3);
      break;
    }
  }
  EXPECT_EQ(out, "abc");
  EXPECT_EQ(err, "40x120");
  EXPECT_TRUE(out_closed && err_closed);
}

TEST_F(ControlTest, ExecStreamingErrorReachesTheClient) {
  ControlClient client(path_);
  auto s = client.ExecStreaming({{"fail"}, false, 0, 0, 0});
  ASSERT_TRUE(s.ok());
  auto ev = (*s)->Next();
  ASSERT_FALSE(ev.ok());
  EXPECT_NE(ev.error().message().find("no such command: fail"), std::string::npos);
}

TEST_F(ControlTest, WrongProtocolVersionAndMalformedFramesGetClearErrors) {
  auto fd = ConnectUnix(path_);
  ASSERT_TRUE(fd.ok());
  control::Request req;
  req.set_version(static_cast<control::ProtocolVersion>(7));
  req.mutable_inspect();
  ASSERT_TRUE(WriteFrame(fd->get(), req).ok());
  control::Response resp;
  ASSERT_TRUE(ReadFrame(fd->get(), &resp, 5000).ok());
  EXPECT_NE(resp.error().find("version 1"), std::string::npos) << resp.error();

  auto fd2 = ConnectUnix(path_);
  ASSERT_TRUE(fd2.ok());
  const char garbage[] = "\xff\xff\xff\xffjunk";
  ASSERT_EQ(write(fd2->get(), garbage, sizeof garbage - 1), static_cast<ssize_t>(sizeof garbage - 1));
  control::Response resp2;
  ASSERT_TRUE(ReadFrame(fd2->get(), &resp2, 5000).ok());
  EXPECT_NE(resp2.error().find("malformed control request"), std::string::npos) << resp2.error();

  // The server still serves after both.
  EXPECT_TRUE(ControlClient(path_).Inspect().ok());
}

TEST_F(ControlTest, ShutdownRunsItsHookAfterTheReply) {
  ASSERT_TRUE(ControlClient(path_).Shutdown().ok());
  for (int i = 0; i < 100 && !task_.shutdown_; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(task_.shutdown_);
}

TEST(ControlSocketPath, LongPathsAreReachable) {
  test_support::TempDir temp("long");
  std::string dir = temp.Path(std::string(100, 'd'));
  ASSERT_EQ(std::system(("mkdir -p " + dir).c_str()), 0);
  std::string path = dir + "/control.sock";
  ASSERT_GT(path.size(), 108u);
  // Bind relative to the directory (as the shim does after chdir), connect through the long path.
  std::string cwd(4096, '\0');
  ASSERT_NE(getcwd(cwd.data(), cwd.size()), nullptr);
  ASSERT_EQ(chdir(dir.c_str()), 0);
  auto listener = ListenUnix("control.sock");
  ASSERT_EQ(chdir(cwd.c_str()), 0);
  ASSERT_TRUE(listener.ok()) << listener.error().message();
  auto fd = ConnectUnix(path);
  EXPECT_TRUE(fd.ok()) << fd.error().message();
}

TEST(ControlSocketPath, ListenRefusesToReplaceANonSocket) {
  test_support::TempDir dir("sock");
  std::string path = dir.Path("control.sock");
  ASSERT_EQ(std::system(("touch " + path).c_str()), 0);
  auto listener = ListenUnix(path);
  ASSERT_FALSE(listener.ok());
  EXPECT_NE(listener.error().message().find("not a socket"), std::string::npos);
}

}  // namespace
}  // namespace nfc::shim
