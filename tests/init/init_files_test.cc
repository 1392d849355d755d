// Nomad's task directories end to end without a VM: the shim's host end (shim::TaskFiles) and nomad-init's
// guest end (init_ns_fixture.h: PID 1 in namespaces) over the real control channel. The host directories
// are laid out the way Nomad's allocdir makes them.
#include "init_files_fixture.h"

namespace nfc::guest {
namespace {

using namespace std::chrono_literals;

TEST_F(InitFilesTest, TheWorkloadStartsWithTheFilesAndEverySignalSeesTheLatestRender) {
  WriteText(HostPath("web/local/app.conf"), "v0\n");
  WriteText(HostPath("web/secrets/token"), "s3cret\n");
  ASSERT_EQ(chmod(HostPath("web/secrets/token").c_str(), 0600), 0);
  WriteText(HostPath("alloc/logs/web.stdout.0"), "Nomad's log file, not mirrored\n");
  Start(
      FilesSpec("trap 'cat /local/app.conf' HUP; trap 'cat /alloc/data/host.txt' USR1;"
                "cat /local/app.conf /secrets/token; grep ' /secrets ' /proc/mounts | awk '{print $3}';"
                "ls /alloc/logs 2>/dev/null | wc -l; echo from-guest > /alloc/data/guest.txt; echo ready;"
                "while true; do sleep 0.05; done"));
  auto agent = Connect();
  ASSERT_TRUE(agent);
  auto before = agent->QueryStatus();
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->phase, GuestPhase::kBooting) << "the workload started before the host sent its files";

  auto files = shim::TaskFiles::Open(HostRoots(), uint64_t{1} << 30);
  ASSERT_TRUE(files.ok()) << files.error().ToString();
  std::shared_ptr<AgentClient> shared(std::move(agent));
  Status attached = (*files)->Attach(shared);
  ASSERT_TRUE(attached.ok()) << attached.error().ToString();
  ASSERT_TRUE(ReadUntil(*shared, [](const std::string& o) { return o.find("ready\n") != std::string::npos; }))
      << out_;
  EXPECT_EQ(out_, "v0\ns3cret\ntmpfs\n0\nready\n") << "files, secrets on tmpfs, /alloc/logs left out";

  // Live updates: back-to-back renders, each followed at once by Nomad's SignalTask (barrier, then signal).
  for (int i = 1; i <= 20; i++) {
    std::string version = "v" + std::to_string(i) + "\n";
    Render(HostPath("web/local/app.conf"), version);
    size_t mark = out_.size();
    Status synced = (*files)->Barrier();
    ASSERT_TRUE(synced.ok()) << synced.error().ToString();
    ASSERT_TRUE(shared->Signal(SIGHUP).ok());
    ASSERT_TRUE(
        ReadUntil(*shared, [&](const std::string& o) { return o.size() > mark && EndsWith(o, "\n"); }))
        << "render " << i;
    EXPECT_EQ(out_.substr(mark), version) << "render " << i << " printed a stale file";
  }

  // /alloc both ways.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (ReadText(HostPath("alloc/data/guest.txt")) != "from-guest\n" &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(ReadText(HostPath("alloc/data/guest.txt")), "from-guest\n")
      << "the guest's write did not reach the host";
  WriteText(HostPath("alloc/data/host.txt"), "from-host\n");
  size_t mark = out_.size();
  ASSERT_TRUE((*files)->Barrier().ok());
  ASSERT_TRUE(shared->Signal(SIGUSR1).ok());
  ASSERT_TRUE(ReadUntil(*shared, [&](const std::string& o) {
    return EndsWith(o.substr(mark), "from-host\n");
  })) << out_.substr(mark);

  ASSERT_TRUE(shared->Shutdown(SIGKILL).ok());
  Outcome end = Collect(*shared);
  EXPECT_EQ(end.exit.signal, SIGKILL);
  AckAndWaitForShutdown(*shared);
  (*files)->Detach();
}

TEST_F(InitFilesTest, AHostCopyOverTheLimitFailsTheStartWithTheReason) {
  WriteText(HostPath("web/local/big"), std::string(8192, 'x'));
  Start(FilesSpec("echo should-not-run"));
  auto agent = Connect();
  ASSERT_TRUE(agent);
  auto files = shim::TaskFiles::Open(HostRoots(), 4096);
  ASSERT_TRUE(files.ok());
  std::shared_ptr<AgentClient> shared(std::move(agent));
  Status attached = (*files)->Attach(shared);
  ASSERT_FALSE(attached.ok());
  EXPECT_EQ(attached.error().code(), ErrorCode::kResourceExhausted) << attached.error().ToString();
  Outcome o = Collect(*shared);
  EXPECT_EQ(o.exit.exit_code, 125);
  EXPECT_NE(o.exit.err.find("more than the limit of 4096 bytes"), std::string::npos) << o.exit.err;
  EXPECT_EQ(o.out, "");
  AckAndWaitForShutdown(*shared);
  (*files)->Detach();
}

TEST_F(InitFilesTest, WithoutTheHostsFilesTheStartTimesOut) {
  TaskSpec spec = FilesSpec("echo should-not-run");
  spec.files.initial_timeout_ms = 500;
  Start(spec);
  auto agent = Connect();
  ASSERT_TRUE(agent);
  Outcome o = Collect(*agent);
  EXPECT_EQ(o.exit.exit_code, 125);
  EXPECT_NE(o.exit.err.find("did not send the task's files within 500 ms"), std::string::npos) << o.exit.err;
  AckAndWaitForShutdown(*agent);
}

TEST_F(InitFilesTest, AStopWhileWaitingForTheFilesEndsTheTaskWithoutRunningIt) {
  Start(FilesSpec("echo should-not-run"));
  auto agent = Connect();
  ASSERT_TRUE(agent);
  ASSERT_TRUE(agent->Shutdown(SIGTERM).ok());
  Outcome o = Collect(*agent, nullptr, 10s);
  EXPECT_EQ(o.exit.exit_code, 128 + SIGTERM);
  EXPECT_NE(o.exit.err.find("stopped while waiting for the task's files"), std::string::npos) << o.exit.err;
  EXPECT_EQ(o.out, "");
  AckAndWaitForShutdown(*agent);
}

}  // namespace
}  // namespace nfc::guest
