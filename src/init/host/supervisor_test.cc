#include "init/host/supervisor.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <thread>

namespace nfc::init::host {
namespace {

std::string Slurp(const std::string& p) {
  std::ifstream f(p);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() / (name + "-" + std::to_string(getpid()))).string();
}

TEST(BoundedLogFile, RotatesOnceFullKeepingOneOldCopy) {
  std::string path = TempPath("bounded.log");
  std::filesystem::remove(path);
  std::filesystem::remove(path + ".1");
  BoundedLogFile log(path, 10);
  ASSERT_TRUE(log.Write("0123456", 7).ok());
  ASSERT_TRUE(log.Write("abcdef", 6).ok());  // would pass 10 bytes: rotate first
  ASSERT_TRUE(log.Write("XYZ", 3).ok());
  ASSERT_TRUE(log.Write("uvwxyz12", 8).ok());
  EXPECT_EQ(Slurp(path + ".1"), "abcdefXYZ");
  EXPECT_EQ(Slurp(path), "uvwxyz12");
  std::filesystem::remove(path);
  std::filesystem::remove(path + ".1");
}

// Reaps the supervised child the way PID 1's loop does and hands the status to the supervisor.
int WaitFor(Supervisor& s) {
  int status = 0;
  EXPECT_EQ(waitpid(s.pid(), &status, 0), s.pid());
  return status;
}

TEST(Supervisor, RestartsWithExponentialBackoffAndCapturesOutput) {
  std::string log_path = TempPath("agent.log");
  std::filesystem::remove(log_path);
  ServiceSpec spec;
  spec.name = "crasher";
  spec.argv = {"/bin/sh", "-c", "echo started; exit 3"};
  spec.log_path = log_path;
  spec.min_backoff = std::chrono::seconds(1);
  spec.max_backoff = std::chrono::seconds(4);
  Supervisor s(spec, -1);
  auto t0 = SupervisorClock::now();
  s.Start(t0);
  ASSERT_TRUE(s.running());
  std::vector<long long> delays;
  auto now = t0;
  for (int i = 0; i < 4; i++) {
    int status = WaitFor(s);
    // Drain what it wrote before handing over the exit.
    while (s.output_fd() >= 0) s.PumpOutput();
    EXPECT_TRUE(WIFEXITED(status));
    s.OnExit(status, now);
    EXPECT_FALSE(s.running());
    delays.push_back(std::chrono::duration_cast<std::chrono::seconds>(s.deadline() - now).count());
    s.OnDeadline(now);  // too early: nothing happens
    EXPECT_FALSE(s.running());
    now = s.deadline();
    s.OnDeadline(now);
    ASSERT_TRUE(s.running());
  }
  EXPECT_EQ(delays, (std::vector<long long>{1, 2, 4, 4}));
  EXPECT_EQ(s.starts(), 5);
  WaitFor(s);
  std::string log = Slurp(log_path);
  EXPECT_EQ(log, "started\nstarted\nstarted\nstarted\n");
  std::filesystem::remove(log_path);
}

TEST(Supervisor, BackoffResetsAfterAStableRunAndStopEndsRestarts) {
  ServiceSpec spec;
  spec.name = "sleeper";
  spec.argv = {"/bin/sleep", "30"};
  spec.stable_after = std::chrono::seconds(60);
  Supervisor s(spec, -1);
  auto t0 = SupervisorClock::now();
  s.Start(t0);
  ASSERT_TRUE(s.running());
  s.Signal(SIGKILL, false);
  int status = WaitFor(s);
  EXPECT_TRUE(WIFSIGNALED(status));
  s.OnExit(status, t0 + std::chrono::seconds(61));  // ran "61 s": back to the minimum back-off
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(s.deadline() - t0).count(), 62);
  s.OnDeadline(s.deadline());
  ASSERT_TRUE(s.running());
  s.Signal(SIGTERM, true);
  status = WaitFor(s);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
  s.OnExit(status, t0 + std::chrono::seconds(70));
  EXPECT_EQ(s.deadline(), SupervisorClock::time_point::max());  // stopped for good
}

}  // namespace
}  // namespace nfc::init::host
