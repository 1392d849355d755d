// The fixture of the nomad-init namespace tests (init_ns_test.cc, init_files_test.cc):
// nomad-init (guest role) as PID 1 in fresh PID, mount, UTS, IPC and network namespaces, over a root
// filesystem the test builds from busybox-static, talking to it through the real AgentClient over the
// unix-socket transport. One scenario per behaviour. Every init runs under `unshare --kill-child`, so killing
// unshare (timeout, failed assertion) takes the whole namespace down; the test directory is removed
// afterwards.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "base/process.h"
#include "guest/agent.pb.h"
#include "guest/agent_client.h"
#include "guest/framing.h"
#include "guest/task_spec.h"
#include "require.h"
#include "temp_dir.h"

namespace nfc::guest {

using namespace std::chrono_literals;

inline const char* kApplets[] = {"sh",    "echo",     "cat",  "sleep", "id", "pwd", "env",  "kill", "ip",
                                 "head",  "seq",      "tr",   "ps",    "wc", "tty", "stty", "grep", "true",
                                 "false", "hostname", "read", "dd",    "ls", "awk", "test"};

inline bool Exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

inline void WriteText(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

inline std::string ReadText(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// What a task produced, as the host saw it through the control channel.
struct Outcome {
  std::string out, err;
  ExitReport exit;
  GuestStatus status;
};

class InitNamespaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NFC_REQUIRE_OR_SKIP(geteuid() == 0, "needs root (PID/mount namespaces, overlayfs)");
    NFC_REQUIRE_OR_SKIP(Exists("/bin/busybox"), "busybox-static is not installed");
    rootfs_ = dir_.Path("rootfs");
    BuildRootfs(rootfs_, true);
  }

  void TearDown() override {
    if (unshare_pid_ > 0) {
      kill(unshare_pid_, SIGKILL);  // --kill-child takes the namespace's init with it
      int status;
      waitpid(unshare_pid_, &status, 0);
      unshare_pid_ = -1;
    }
    if (HasFailure()) std::cerr << "--- nomad-init console ---\n" << ReadText(dir_.Path("console.log"));
  }

  static void BuildRootfs(const std::string& root, bool with_etc) {
    ASSERT_EQ(system(("mkdir -p '" + root + "/bin'").c_str()), 0);
    ASSERT_EQ(system(("cp /bin/busybox '" + root + "/bin/busybox'").c_str()), 0);
    for (const char* a : kApplets) ASSERT_EQ(symlink("busybox", (root + "/bin/" + a).c_str()), 0);
    if (!with_etc) return;
    ASSERT_EQ(mkdir((root + "/etc").c_str(), 0755), 0);
    WriteText(root + "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App:/home/app:/bin/sh\n");
    WriteText(root + "/etc/group", "root:x:0:\napp:x:1000:\naudio:x:29:app\nvideo:x:44:\n");
  }

  TaskSpec BaseSpec(const std::string& script) {
    TaskSpec s;
    s.task_id = "test/" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name());
    s.root.directory = rootfs_;
    s.scratch.tmpfs_size = "64m";
    s.image.env = {"PATH=/bin"};
    s.process.entrypoint = std::vector<std::string>{"/bin/sh", "-c", script};
    s.control.unix_socket = dir_.Path("agent.sock");
    s.control.exit_ack_timeout_ms = 20000;
    s.workload_cgroup = false;  // the namespace shares the host's cgroup tree; do not create groups in it
    s.debug = true;
    return s;
  }

  // Starts nomad-init with spec (or raw JSON) as PID 1 of new namespaces.
  void Start(const std::string& spec_json) {
    std::string config = dir_.Path("task.json");
    WriteText(config, spec_json);
    int console = open(dir_.Path("console.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    ASSERT_GE(console, 0);
    SpawnOptions o;
    o.argv = {"unshare",
              "--pid",
              "--mount",
              "--uts",
              "--ipc",
              "--net",
              "--fork",
              "--kill-child",
              NFC_INIT_BINARY,
              "--config=" + config,
              "--control-socket=" + dir_.Path("agent.sock")};
    o.stdout_fd = console;
    o.stderr_fd = console;
    auto child = Spawn(o);
    close(console);
    ASSERT_TRUE(child.ok()) << child.error().ToString();
    unshare_pid_ = child->pid;
  }
  void Start(const TaskSpec& spec) { Start(TaskSpecToJson(spec)); }

  std::unique_ptr<AgentClient> Connect(LogOffsets resume = {}) {
    auto fd = AgentClient::DialUnix(dir_.Path("agent.sock"), 10s);
    EXPECT_TRUE(fd.ok()) << fd.error().ToString();
    if (!fd.ok()) return nullptr;
    AgentClient::Options o;
    o.resume = resume;
    o.client_name = "init_ns_test";
    auto c = AgentClient::Connect(std::move(fd).value(), o);
    EXPECT_TRUE(c.ok()) << c.error().ToString();
    if (!c.ok()) return nullptr;
    return std::move(c).value();
  }

  // Reads logs (acknowledging them) until the exit result arrived and every byte up to its log_end was read.
  // on_stdout sees stdout as it grows (to react to "ready" markers).
  Outcome Collect(AgentClient& c, const std::function<void(const std::string&)>& on_stdout = nullptr,
                  std::chrono::seconds timeout = 60s) {
    Outcome o;
    LogOffsets got = c.acked();
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::optional<ExitReport> exit;
    while (std::chrono::steady_clock::now() < deadline) {
      auto chunk = c.NextLog(20ms);
      if (!chunk.ok()) break;
      if (*chunk) {
        auto& ch = **chunk;
        EXPECT_EQ(ch.offset, got.at(ch.stream)) << "chunks arrive in order without gaps";
        (ch.stream == LogStream::kStdout ? o.out : o.err) += ch.data;
        got.at(ch.stream) = ch.offset + ch.data.size();
        EXPECT_TRUE(c.AckLog(ch.stream, got.at(ch.stream)).ok());
        if (ch.stream == LogStream::kStdout && on_stdout) on_stdout(o.out);
        continue;
      }
      if (!exit) {
        auto e = c.WaitExit(0ms);
        if (e.ok()) exit = *e;
      }
      if (exit && got.stdout_offset >= exit->log_end.stdout_offset &&
          got.stderr_offset >= exit->log_end.stderr_offset) {
        break;
      }
    }
    EXPECT_TRUE(exit.has_value()) << "no exit result within " << timeout.count()
                                  << " s; stdout so far: " << o.out;
    if (exit) o.exit = *exit;
    auto st = c.QueryStatus();
    if (st.ok()) o.status = *st;
    return o;
  }

  // Acknowledges the exit and waits for the namespace to end (init reboots: unshare's child dies of SIGHUP).
  void AckAndWaitForShutdown(AgentClient& c) {
    auto acked = c.AckExit();
    ASSERT_TRUE(acked.ok()) << acked.error().ToString();
    WaitForInitEnd();
  }

  void WaitForInitEnd(std::chrono::seconds timeout = 20s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status;
      pid_t r = waitpid(unshare_pid_, &status, WNOHANG);
      if (r == unshare_pid_) {
        unshare_pid_ = -1;
        // reboot(2) in a PID namespace kills its init with SIGHUP; unshare reports that.
        EXPECT_TRUE((WIFSIGNALED(status) && WTERMSIG(status) == SIGHUP) ||
                    (WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGHUP))
            << DescribeWaitStatus(status);
        return;
      }
      std::this_thread::sleep_for(10ms);
    }
    ADD_FAILURE() << "nomad-init did not shut down within " << timeout.count() << " s";
  }

  pid_t InitHostPid() {
    std::string children = ReadText("/proc/" + std::to_string(unshare_pid_) + "/task/" +
                                    std::to_string(unshare_pid_) + "/children");
    return static_cast<pid_t>(std::atoi(children.c_str()));
  }

  Outcome RunToEnd(const TaskSpec& spec) {
    Start(spec);
    auto c = Connect();
    if (!c) return {};
    Outcome o = Collect(*c);
    AckAndWaitForShutdown(*c);
    return o;
  }

  test_support::TempDir dir_{"init-ns"};  // removed after TearDown has ended the namespace
  std::string rootfs_;
  pid_t unshare_pid_ = -1;
};

}  // namespace nfc::guest
