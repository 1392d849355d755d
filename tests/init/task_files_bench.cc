// Benchmark (prints figures; not a CTest entry): how long a host change to a task directory takes to be
// visible to the workload, and what the barrier before SignalTask/ExecTask costs. The host end is the shim's
// TaskFiles, the guest end nomad-init as PID 1 in namespaces over the real control channel (no VM: the
// figures are the mirroring's own, without a VMM's channel latency). The workload's view is read from the
// host through /proc/<workload>/root, polled every 100 us.
//   build/test/tests/init/task_files_bench [--gtest_filter=...]   (root; sanitized build: figures run slower)
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "init_files_fixture.h"

namespace nfc::guest {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<int> Children(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  std::vector<int> out;
  for (int c; f >> c;) out.push_back(c);
  return out;
}

void Report(const char* what, std::vector<double> us) {
  std::sort(us.begin(), us.end());
  auto at = [&](double q) { return us[std::min(us.size() - 1, static_cast<size_t>(q * us.size()))]; };
  std::printf("%-44s n=%3zu  median %8.0f us  p99 %8.0f us  max %8.0f us\n", what, us.size(), at(0.5),
              at(0.99), us.back());
}

class TaskFilesBench : public InitFilesTest {};

TEST_F(TaskFilesBench, ChangeToGuestLatencyAndBarrierCost) {
  constexpr int kChanges = 100;
  WriteText(HostPath("web/local/app.conf"), "v0\n");
  Start(FilesSpec("echo ready; while true; do sleep 1; done"));
  auto agent = Connect();
  ASSERT_TRUE(agent);
  auto files = shim::TaskFiles::Open(HostRoots(), uint64_t{1} << 30);
  ASSERT_TRUE(files.ok()) << files.error().ToString();
  std::shared_ptr<AgentClient> shared(std::move(agent));
  ASSERT_TRUE((*files)->Attach(shared).ok());
  ASSERT_TRUE(
      ReadUntil(*shared, [](const std::string& o) { return o.find("ready\n") != std::string::npos; }));
  // The workload: nomad-init's child (the unshare process's child is nomad-init).
  auto inits = Children(unshare_pid_);
  ASSERT_EQ(inits.size(), 1u);
  auto workloads = Children(inits[0]);
  ASSERT_FALSE(workloads.empty());
  const std::string seen_path = "/proc/" + std::to_string(workloads[0]) + "/root/local/app.conf";
  ASSERT_EQ(ReadText(seen_path), "v0\n");

  std::vector<double> watcher_us, barrier_idle_us, barrier_pending_us, render_barrier_us;
  for (int i = 1; i <= kChanges; ++i) {  // the watcher alone: render, then poll the guest's view
    std::string version = "w" + std::to_string(i) + "\n";
    auto t0 = Clock::now();
    Render(HostPath("web/local/app.conf"), version);
    while (ReadText(seen_path) != version) {
      ASSERT_LT(Clock::now() - t0, 10s) << "change " << i << " never reached the guest";
      std::this_thread::sleep_for(100us);
    }
    watcher_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  for (int i = 1; i <= kChanges; ++i) {  // the barrier with nothing to send
    auto t0 = Clock::now();
    ASSERT_TRUE((*files)->Barrier().ok());
    barrier_idle_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  for (int i = 1; i <= kChanges; ++i) {  // render then at once the barrier (SignalTask right after a render)
    std::string version = "b" + std::to_string(i) + "\n";
    auto t0 = Clock::now();
    Render(HostPath("web/local/app.conf"), version);
    auto t1 = Clock::now();
    ASSERT_TRUE((*files)->Barrier().ok());
    auto t2 = Clock::now();
    ASSERT_EQ(ReadText(seen_path), version)
        << "the barrier returned before change " << i << " was in the guest";
    barrier_pending_us.push_back(std::chrono::duration<double, std::micro>(t2 - t1).count());
    render_barrier_us.push_back(std::chrono::duration<double, std::micro>(t2 - t0).count());
  }
  std::printf("task files: %d changes of one file in /local (rename, as Nomad's template renderer does)\n",
              kChanges);
  Report("host change -> guest sees it (watcher)", watcher_us);
  Report("barrier, nothing pending", barrier_idle_us);
  Report("barrier right after a render", barrier_pending_us);
  Report("render + barrier (change visible)", render_barrier_us);
  ASSERT_TRUE(shared->Shutdown(SIGKILL).ok());
  Collect(*shared);
  AckAndWaitForShutdown(*shared);
  (*files)->Detach();
}

}  // namespace
}  // namespace nfc::guest
