// Task lifecycle end to end: real QEMU guests (TCG here), a real local registry, the task Manager the
// plugin's gRPC layer calls (driver::TaskManager), Nomad-style FIFOs read by a logmon-like reader.
//
// The recovery scenario kills real "plugin" processes: this binary re-executes itself with --plugin-helper;
// the helper holds a Manager, starts or recovers the task, prints what it learned and waits to be killed -9.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "base/fs.h"
#include "base/process.h"
#include "lifecycle_fixture.h"
#include "require.h"
#include "run_all_tests.h"
#include "shim/task_dir.h"

namespace nfc::lifecycle_test {
namespace {

using namespace std::chrono_literals;

// Missing guest artifacts or registry tools skip (and fail in CI or as root: require.h); a registry that does
// not start or a push that fails is a failure.
#define REQUIRE_ENV()                                                           \
  const SharedEnvResult& shared = SharedEnv();                                  \
  NFC_REQUIRE_OR_SKIP(shared.missing.empty(), shared.missing);                  \
  ASSERT_NE(shared.env, nullptr) << "lifecycle environment: " << shared.failed; \
  Env* env = shared.env

std::string Dump(const driver::ExitResult& r) {
  return "exit_code=" + std::to_string(r.exit_code) + " signal=" + std::to_string(r.signal) + " err=" + r.err;
}

int CountTaskDirs(Env* env) {
  int n = 0;
  std::string dir = env->config.data_dir + "/tasks";
  if (DIR* d = opendir(dir.c_str())) {
    while (auto* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

// Starts, waits, checks output and exit code, destroys, checks nothing is left.
void RunToExit(Env* env, const std::string& name, const std::vector<std::string>& argv, int want_code,
               int want_signal, const std::string& want_stdout, const std::string& want_stderr) {
  auto m = NewManager(env);
  auto t = MakeTask(env, name, argv);
  auto started = m->StartTask(t->task, t->config);
  ASSERT_TRUE(started.ok()) << started.error().message();
  auto state = m->State(t->task.id);
  ASSERT_TRUE(state.has_value());
  auto result = m->WaitTask(t->task.id, [] { return false; });
  ASSERT_TRUE(result.ok()) << result.error().message();
  EXPECT_EQ(result->exit_code, want_code) << Dump(*result);
  EXPECT_EQ(result->signal, want_signal) << Dump(*result);
  EXPECT_TRUE(result->err.empty()) << result->err;
  ASSERT_TRUE(t->WaitLogsDrained()) << "the log readers did not catch up within 10 s";
  EXPECT_EQ(t->Stdout(), want_stdout);
  EXPECT_EQ(t->Stderr(), want_stderr);
  // WaitTask again (another caller) gets the same result.
  auto again = m->WaitTask(t->task.id, [] { return false; });
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->exit_code, want_code);
  ASSERT_TRUE(m->DestroyTask(t->task.id, true).ok());
  EXPECT_TRUE(m->DestroyTask(t->task.id, true).ok()) << "a second DestroyTask is harmless";
  EXPECT_FALSE(state->shim.IsAlive()) << "shim left running";
  EXPECT_TRUE(ProcessesMentioning(state->task_dir).empty()) << "a process still uses " << state->task_dir;
  EXPECT_NE(::access(state->task_dir.c_str(), F_OK), 0) << state->task_dir << " left behind";
}

TEST(Lifecycle, ExitCodeZeroAndOutputInTheRightFiles) {
  REQUIRE_ENV();
  RunToExit(env, "ok", {"/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2; echo $NOMAD_TASK_NAME"}, 0, 0,
            "to-stdout\nok\n", "to-stderr\n");
}

TEST(Lifecycle, ExitCodeThree) {
  REQUIRE_ENV();
  RunToExit(env, "three", {"/bin/sh", "-c", "echo bye; exit 3"}, 3, 0, "bye\n", "");
}

TEST(Lifecycle, KilledBySignalIs128PlusSignal) {
  REQUIRE_ENV();
  RunToExit(env, "sig", {"/bin/sh", "-c", "kill -USR1 $$"}, 128 + SIGUSR1, SIGUSR1, "", "");
}

struct Running {
  std::unique_ptr<task::Manager> m;
  std::unique_ptr<NomadTaskFixture> t;
};

Running StartRunning(Env* env, const std::string& name, const std::string& script) {
  Running r{NewManager(env), MakeTask(env, name, {"/bin/sh", "-c", script})};
  auto started = r.m->StartTask(r.t->task, r.t->config);
  EXPECT_TRUE(started.ok()) << started.error().message();
  return r;
}

// Waits until `needle` shows up in the task's stdout.
bool WaitForOutput(const NomadTaskFixture& t, const std::string& needle, std::chrono::seconds limit = 60s) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (t.Stdout().find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

TEST(Lifecycle, StopTaskLetsATrappingWorkloadExitGracefully) {
  REQUIRE_ENV();
  auto r = StartRunning(env, "trap",
                        "trap 'echo graceful; exit 0' TERM; echo ready; while true; do sleep 0.2; done");
  ASSERT_TRUE(WaitForOutput(*r.t, "ready"));
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(r.m->StopTask(r.t->task.id, 10s, "SIGTERM").ok());
  auto result = r.m->WaitTask(r.t->task.id, [] { return false; });
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 0) << Dump(*result);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 9s) << "a trapping workload must not wait for the timeout";
  ASSERT_TRUE(r.t->WaitLogsDrained()) << "the log readers did not catch up within 10 s";
  EXPECT_NE(r.t->Stdout().find("graceful"), std::string::npos);
  EXPECT_TRUE(r.m->DestroyTask(r.t->task.id, true).ok());
}

TEST(Lifecycle, StopTaskKillsAWorkloadIgnoringTheSignalAfterTheTimeout) {
  REQUIRE_ENV();
  auto r = StartRunning(env, "ignore", "trap '' TERM; echo ready; while true; do sleep 0.2; done");
  ASSERT_TRUE(WaitForOutput(*r.t, "ready"));
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(r.m->StopTask(r.t->task.id, 2s, "SIGTERM").ok());
  auto took = std::chrono::steady_clock::now() - t0;
  auto result = r.m->WaitTask(r.t->task.id, [] { return false; });
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->signal, SIGKILL) << Dump(*result);
  EXPECT_GE(took, 2s);
  EXPECT_LT(took, 30s);
  EXPECT_TRUE(r.m->DestroyTask(r.t->task.id, true).ok());
}

TEST(Lifecycle, SignalTaskDeliversSighup) {
  REQUIRE_ENV();
  auto r = StartRunning(env, "hup", "trap 'echo got-hup' HUP; echo ready; while true; do sleep 0.2; done");
  ASSERT_TRUE(WaitForOutput(*r.t, "ready"));
  ASSERT_TRUE(r.m->SignalTask(r.t->task.id, "SIGHUP").ok());
  EXPECT_TRUE(WaitForOutput(*r.t, "got-hup", 20s));
  auto bad = r.m->SignalTask(r.t->task.id, "SIGNOPE");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("SIGNOPE"), std::string::npos);
  EXPECT_TRUE(r.m->StopTask(r.t->task.id, 1s, "SIGKILL").ok());
  EXPECT_TRUE(r.m->DestroyTask(r.t->task.id, true).ok());
}

TEST(Lifecycle, ExecWithAndWithoutTtyAndStats) {
  REQUIRE_ENV();
  auto r = StartRunning(env, "exec", "echo ready; while true; do :; done");
  ASSERT_TRUE(WaitForOutput(*r.t, "ready"));
  auto out = r.m->ExecTask(r.t->task.id, {"/bin/sh", "-c", "echo hi; echo oops >&2; exit 4"}, 20s);
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ(out->stdout_data, "hi\n");
  EXPECT_EQ(out->stderr_data, "oops\n");
  EXPECT_EQ(out->result.exit_code, 4);

  auto session = r.m->ExecStreaming(r.t->task.id, {"/bin/sh", "-c", "tty >/dev/null && echo is-a-tty; cat"},
                                    true, 24, 80);
  ASSERT_TRUE(session.ok()) << session.error().message();
  ASSERT_TRUE((*session)->SendStdin("hello-exec\n").ok());
  ASSERT_TRUE((*session)->SendStdin(std::string(1, '\x04')).ok());  // ^D on the terminal ends cat
  std::string tty_out;
  int exit_code = -1;
  for (int i = 0; i < 1000; i++) {
    auto ev = (*session)->Next([] { return false; });
    ASSERT_TRUE(ev.ok()) << ev.error().message();
    if (ev->kind == driver::RpcExecSession::Event::Kind::kStdout) tty_out += ev->data;
    if (ev->kind == driver::RpcExecSession::Event::Kind::kExited) {
      exit_code = ev->result.exit_code;
      break;
    }
  }
  EXPECT_EQ(exit_code, 0);
  EXPECT_NE(tty_out.find("is-a-tty"), std::string::npos) << tty_out;
  EXPECT_NE(tty_out.find("hello-exec"), std::string::npos) << tty_out;

  std::vector<driver::TaskStatsSample> samples;
  ASSERT_TRUE(r.m->StreamTaskStats(
                     r.t->task.id, 500ms,
                     [&](const driver::TaskStatsSample& s) {
                       samples.push_back(s);
                       return samples.size() < 4;
                     },
                     [] { return false; })
                  .ok());
  ASSERT_EQ(samples.size(), 4u);
  const auto& last = samples.back();
  std::cout << "stats: cpu " << last.cpu_percent << "% ticks " << last.cpu_total_ticks << " MHz rss "
            << last.memory_rss << " usage " << last.memory_usage << "\n";
  EXPECT_GT(last.cpu_percent, 20) << "a busy loop must show";
  EXPECT_LE(last.cpu_percent, 100 * 2 + 10);
  EXPECT_GT(last.memory_usage, 1u << 20);
  EXPECT_LT(last.memory_usage, 512u << 20);
  EXPECT_TRUE(r.m->StopTask(r.t->task.id, 1s, "SIGKILL").ok());
  EXPECT_TRUE(r.m->DestroyTask(r.t->task.id, true).ok());
}

// ---- recovery across plugin kills -------------------------------------------------------------------------

// The helper process: a "plugin" that starts (or recovers) the task and reports. Lines on stdout:
//   handle <hex of driver_state>    (start only)
//   boot <guest boot id>
//   shimrss <kB>
int PluginHelper(const std::string& mode, const std::string& arg) {
  Env* env = SharedEnv().env;
  if (!env) return 3;
  auto m = NewManager(env);
  std::string task_id;
  if (mode == "start") {
    // The log FIFOs belong to the parent test (logmon); arg = "<stdout fifo>|<stderr fifo>|<task id>".
    auto bar = arg.find('|');
    auto bar2 = arg.find('|', bar + 1);
    driver::NomadTask t;
    t.stdout_path = arg.substr(0, bar);
    t.stderr_path = arg.substr(bar + 1, bar2 - bar - 1);
    t.id = arg.substr(bar2 + 1);
    t.name = "counter";
    t.alloc_id = t.id.substr(0, t.id.find('/'));
    t.resources.memory_mb = 128;
    driver::TaskConfig c;
    c.image = env->image;
    c.auth = driver::RegistryAuth{"nomad", "s3cret", ""};
    c.args = std::vector<std::string>{"/bin/sh", "-c",
                                      "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.01; done"};
    auto started = m->StartTask(t, c);
    if (!started.ok()) {
      std::cout << "error " << started.error().message() << std::endl;
      return 1;
    }
    std::ostringstream hex;
    for (unsigned char ch : started->handle.driver_state)
      hex << "0123456789abcdef"[ch >> 4] << "0123456789abcdef"[ch & 15];
    std::cout << "handle " << hex.str() << std::endl;
    task_id = t.id;
  } else {
    driver::TaskHandle h;
    for (size_t i = 0; i + 1 < arg.size(); i += 2)
      h.driver_state.push_back(static_cast<char>(std::stoi(arg.substr(i, 2), nullptr, 16)));
    auto state = task::DriverState::Decode(h.driver_state);
    if (!state.ok()) return 1;
    h.config.id = state->task_id;
    Status s = m->RecoverTask(h);
    if (!s.ok()) {
      std::cout << "error " << s.error().message() << std::endl;
      return 1;
    }
    task_id = state->task_id;
  }
  auto info = m->InspectTask(task_id);
  if (info.ok()) std::cout << "boot " << info->driver_attributes["guest_boot_id"] << std::endl;
  std::cout << "ready" << std::endl;
  for (;;) pause();
}

std::string g_self;

struct Helper {
  pid_t pid = -1;
  std::map<std::string, std::string> said;
};

Helper RunHelper(const std::string& mode, const std::string& arg) {
  int out[2];
  EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
  Helper h;
  SpawnOptions o;
  o.argv = {g_self, "--plugin-helper", mode, arg};
  o.stdout_fd = out[1];
  auto child = Spawn(o);
  close(out[1]);
  EXPECT_TRUE(child.ok());
  h.pid = child->pid;
  FILE* f = fdopen(out[0], "r");
  char line[1 << 16];
  while (fgets(line, sizeof line, f)) {
    std::string l(line);
    while (!l.empty() && l.back() == '\n') l.pop_back();
    auto sp = l.find(' ');
    std::string key = l.substr(0, sp);
    h.said[key] = sp == std::string::npos ? "" : l.substr(sp + 1);
    if (key == "ready" || key == "error") break;
  }
  fclose(f);
  return h;
}

TEST(Lifecycle, RecoveryAfterRepeatedKill9OfThePluginLosesNoLine) {
  REQUIRE_ENV();
  std::string logs = env->dir + "/recovery";
  mkdir(logs.c_str(), 0700);
  FifoToFile out(logs + "/.counter.stdout.fifo", logs + "/counter.stdout.0");
  FifoToFile err(logs + "/.counter.stderr.fifo", logs + "/counter.stderr.0");
  std::string task_id = "0badc0de-0000-4000-8000-000000000001/counter/5eed5eed";
  Helper first =
      RunHelper("start", logs + "/.counter.stdout.fifo|" + logs + "/.counter.stderr.fifo|" + task_id);
  ASSERT_TRUE(first.said.count("ready")) << first.said["error"];
  std::string handle = first.said["handle"];
  std::string boot = first.said["boot"];
  ASSERT_FALSE(boot.empty());
  kill(first.pid, SIGKILL);
  waitpid(first.pid, nullptr, 0);
  constexpr int kKills = 4;
  for (int i = 0; i < kKills; i++) {
    std::this_thread::sleep_for(1500ms);  // output continues while no plugin runs
    Helper h = RunHelper("recover", handle);
    ASSERT_TRUE(h.said.count("ready")) << h.said["error"];
    EXPECT_EQ(h.said["boot"], boot) << "RecoverTask must reattach to the same VM, never boot a new one";
    kill(h.pid, SIGKILL);
    waitpid(h.pid, nullptr, 0);
  }
  // A last plugin instance recovers, stops and destroys the task.
  auto m = NewManager(env);
  driver::TaskHandle h;
  for (size_t i = 0; i + 1 < handle.size(); i += 2)
    h.driver_state.push_back(static_cast<char>(std::stoi(handle.substr(i, 2), nullptr, 16)));
  h.config.id = task_id;
  ASSERT_TRUE(m->RecoverTask(h).ok());
  EXPECT_TRUE(m->RecoverTask(h).ok()) << "RecoverTask is idempotent";
  auto info = m->InspectTask(task_id);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->driver_attributes["guest_boot_id"], boot);
  // Shim memory, measured while the task runs.
  auto state = task::DriverState::Decode(h.driver_state);
  ASSERT_TRUE(state.ok());
  std::ifstream status("/proc/" + std::to_string(state->shim.pid) + "/status");
  std::map<std::string, long> kb;
  for (std::string line; std::getline(status, line);) {
    for (const char* key : {"VmRSS:", "RssAnon:", "RssFile:"}) {
      if (line.rfind(key, 0) == 0) kb[key] = std::atol(line.c_str() + std::strlen(key));
    }
  }
  std::cout << "shim memory: VmRSS " << kb["VmRSS:"] << " kB (RssAnon " << kb["RssAnon:"]
            << " kB private, RssFile " << kb["RssFile:"] << " kB of its static binary)\n";
  // The budget is 2 MiB of VmRSS (issue 7); measured 1984-2028 kB (docs/lifecycle.md). Its RssFile is the
  // static binary's clean text, shared by every shim on the host and reclaimable; how much of it the kernel
  // maps moves by a few dozen kB with the page cache's folio state, too close to 2048 for a stable pass/fail
  // line. So the private part, the real per-task cost, is held to a tight bound, the whole set to a
  // regression bound, and the shim must map no shared library (its text would no longer be one file shared by
  // all shims).
  EXPECT_GT(kb["VmRSS:"], 0);
  EXPECT_LT(kb["RssAnon:"], 512)
      << "the shim's private memory grew (docs/lifecycle.md: where its memory goes)";
  EXPECT_LT(kb["VmRSS:"], 2304) << "the shim's resident set grew well past its 2 MiB budget";
  std::ifstream maps("/proc/" + std::to_string(state->shim.pid) + "/maps");
  for (std::string line; std::getline(maps, line);) {
    EXPECT_EQ(line.find(".so"), std::string::npos) << "the shim maps a shared library: " << line;
  }
  ASSERT_TRUE(m->StopTask(task_id, 2s, "SIGTERM").ok());
  auto result = m->WaitTask(task_id, [] { return false; });
  ASSERT_TRUE(result.ok());
  ASSERT_TRUE(out.WaitDrained()) << "the log reader did not catch up within 10 s";
  std::string text = out.Contents();
  std::istringstream lines(text);
  int expected = 1, lost_or_duplicated = 0, total = 0;
  for (std::string l; std::getline(lines, l);) {
    total++;
    if (l != "line " + std::to_string(expected)) {
      lost_or_duplicated++;
      ADD_FAILURE() << "line " << total << " is \"" << l << "\", expected \"line " << expected << "\"";
      if (lost_or_duplicated > 5) break;
    }
    expected = std::atoi(l.c_str() + 5) + 1;
  }
  std::cout << "recovery: " << kKills + 1 << " plugin kills, " << total << " lines, " << lost_or_duplicated
            << " lost or duplicated\n";
  EXPECT_GT(total, 100);
  EXPECT_EQ(lost_or_duplicated, 0);
  EXPECT_TRUE(m->DestroyTask(task_id, true).ok());
  EXPECT_FALSE(state->shim.IsAlive());
}

TEST(Lifecycle, RecoverTaskErrorsWhenTheShimIsGoneAndNeverBootsAgain) {
  REQUIRE_ENV();
  auto r = StartRunning(env, "gone", "while true; do sleep 1; done");
  auto state = r.m->State(r.t->task.id);
  ASSERT_TRUE(state.has_value());
  std::string handle = state->Encode();
  // The shim and its VM die behind the plugin's back (no exit record is written by a SIGKILLed shim).
  kill(state->shim.pid, SIGKILL);
  auto until = std::chrono::steady_clock::now() + 10s;
  while (state->shim.IsAlive() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(20ms);
  ASSERT_FALSE(state->shim.IsAlive()) << "the shim outlived SIGKILL by 10 s";
  auto fresh = NewManager(env);
  driver::TaskHandle h;
  h.config.id = r.t->task.id;
  h.driver_state = handle;
  int before = CountTaskDirs(env);
  Status s = fresh->RecoverTask(h);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("gone"), std::string::npos) << s.error().message();
  // The fresh instance cannot be asked to destroy a task it does not know: RecoverTask removed everything,
  // including the VMM the dead shim left behind.
  EXPECT_EQ(CountTaskDirs(env), before - 1);
  EXPECT_TRUE(ProcessesMentioning(state->task_dir).empty()) << "the orphaned VMM must be killed";
  EXPECT_TRUE(fresh->DestroyTask(r.t->task.id, true).ok());  // what Nomad sends next: harmless
  EXPECT_TRUE(r.m->DestroyTask(r.t->task.id, true).ok());
}

TEST(Lifecycle, BadInputsGiveClearErrorsAndLeakNothing) {
  REQUIRE_ENV();
  int before = CountTaskDirs(env);
  auto m = NewManager(env);
  {
    auto t = MakeTask(env, "noimage", {"/bin/true"});
    t->config.image = env->registry->host() + "/does-not-exist:1";
    auto r = m->StartTask(t->task, t->config);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("does-not-exist"), std::string::npos) << r.error().message();
  }
  {
    auto t = MakeTask(env, "badauth", {"/bin/true"});
    t->config.auth = driver::RegistryAuth{"nomad", "wrong", ""};
    t->config.force_pull = true;
    auto r = m->StartTask(t->task, t->config);
    ASSERT_FALSE(r.ok());
    std::cout << "bad auth: " << r.error().message() << "\n";
  }
  {
    auto t = MakeTask(env, "hugemem", {"/bin/true"});
    t->config.mem_size_mib = 1 << 22;
    auto r = m->StartTask(t->task, t->config);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("mem_size"), std::string::npos) << r.error().message();
  }
  {
    driver::TaskHandle h;
    h.config.id = "x/y/z";
    h.driver_state = "{\"version\": 1, \"task_id\": 5}";
    Status s = m->RecoverTask(h);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(s.error().message().find("driver state"), std::string::npos) << s.error().message();
  }
  EXPECT_TRUE(m->StopTask("never/was/here", 1s, "").ok());
  EXPECT_TRUE(m->DestroyTask("never/was/here", true).ok());
  EXPECT_FALSE(m->WaitTask("never/was/here", [] { return false; }).ok());
  EXPECT_EQ(CountTaskDirs(env), before) << "a failed start must leave no task directory";
}

// Runs `nomad-driver-firecracker <args>` (bounded), keeping its output in <log>.out/.err: exit code, stdout,
// stderr.
std::tuple<int, std::string, std::string> RunCli(const std::string& args, const std::string& log) {
  std::string cmd = std::string("timeout 300 ") + NFC_PLUGIN_BINARY + " " + args;
  int status = std::system((cmd + " >" + log + ".out 2>" + log + ".err").c_str());
  std::ifstream out(log + ".out"), err(log + ".err");
  std::stringstream o, e;
  o << out.rdbuf();
  e << err.rdbuf();
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, o.str(), e.str()};
}

// The CLI shares warm start: `run --warm-start` builds the template after its cold start and waits for it, so
// a second run of the image on the same data dir restores it. Its output and exit code are the same.
TEST(Lifecycle, CliRunWithWarmStartIsWarmTheSecondTime) {
  REQUIRE_ENV();
  std::string data = env->dir + "/cli-data";
  std::string args = "run --warm-start --data-dir " + data + " --backend qemu --kernel " +
                     env->config.kernel_path + " --initrd " + env->config.initrd_path + " oci:" + env->dir +
                     "/layout:demo -- /bin/sh -c 'echo hi; exit 7'";
  auto run = [&](const std::string& log) { return RunCli(args, log); };
  auto [code1, out1, err1] = run(env->dir + "/cli-1");
  EXPECT_EQ(code1, 7) << err1;
  EXPECT_EQ(out1, "hi\n");
  EXPECT_NE(err1.find("==> Booting VM"), std::string::npos) << err1;
  EXPECT_NE(err1.find("building the warm-start template"), std::string::npos) << err1;
  auto [code2, out2, err2] = run(env->dir + "/cli-2");
  EXPECT_EQ(code2, 7) << err2;
  EXPECT_EQ(out2, "hi\n");
  EXPECT_NE(err2.find("==> Restoring VM from its warm-start template"), std::string::npos) << err2;
  EXPECT_EQ(err2.find("building the warm-start template"), std::string::npos) << err2;
}

// `run --template-only` builds the template ahead of time (no workload runs), and prints its key: the first
// `run --warm-start` with the same flags restores it.
TEST(Lifecycle, CliRunTemplateOnlyMakesTheFirstWarmRunWarm) {
  REQUIRE_ENV();
  std::string data = env->dir + "/cli-ahead";
  std::string flags = " --data-dir " + data + " --backend qemu --memory 192 --kernel " +
                      env->config.kernel_path + " --initrd " + env->config.initrd_path + " oci:" + env->dir +
                      "/layout:demo";
  auto run = [&](const std::string& args, const std::string& log) { return RunCli("run " + args, log); };
  auto [code1, out1, err1] =
      run("--template-only" + flags + " -- /bin/sh -c 'echo never; exit 3'", env->dir + "/ahead-1");
  ASSERT_EQ(code1, 0) << err1;
  ASSERT_EQ(out1.size(), 33u) << "not a key and a newline: " << out1;
  std::string key = out1.substr(0, 32);
  EXPECT_TRUE(fs::Exists(data + "/templates/" + key + "/snapshot.state")) << err1;
  EXPECT_EQ(err1.find("==> Booting VM"), std::string::npos) << "no task runs: " << err1;
  EXPECT_EQ(out1.find("never"), std::string::npos);

  auto [code2, out2, err2] =
      run("--warm-start" + flags + " -- /bin/sh -c 'echo hi; exit 7'", env->dir + "/ahead-2");
  EXPECT_EQ(code2, 7) << err2;
  EXPECT_EQ(out2, "hi\n");
  EXPECT_NE(err2.find("==> Restoring VM from its warm-start template"), std::string::npos) << err2;
}

}  // namespace

// Firecracker mode: every request the stand-in got was valid for 1.16.1 (it answers an invalid one with an
// error, recorded), and with warm start on, templates were saved and tasks restored through the API.
int CheckFirecrackerRequests() {
  const SharedEnvResult& shared = SharedEnv();
  if (!shared.env) return 1;
  std::ifstream in(FirecrackerRequests(shared.env));
  std::map<std::string, int> calls;
  int refused = 0;
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object()) continue;
    std::string call = j.value("method", "") + " " + j.value("path", "");
    calls[call]++;
    if (j.value("status", 0) >= 300 || j.contains("fake_bug")) {
      std::cout << "[firecracker] refused or outside the spec: " << line << "\n";
      refused++;
    }
  }
  std::cout << "[firecracker] " << calls["PUT /actions"] << " PUT /actions, " << calls["PUT /snapshot/create"]
            << " PUT /snapshot/create, " << calls["PUT /snapshot/load"] << " PUT /snapshot/load, "
            << calls["PATCH /vm"] << " PATCH /vm\n";
  bool warm_seen =
      !WarmStartMode() || (calls["PUT /snapshot/create"] >= 1 && calls["PUT /snapshot/load"] >= 5);
  if (calls.empty() || refused > 0 || !warm_seen) {
    std::cout << "[firecracker] FAILED: expected only accepted requests"
              << (WarmStartMode() ? ", a snapshot created and at least 5 loaded" : "") << "\n";
    return 1;
  }
  return 0;
}

}  // namespace nfc::lifecycle_test

int main(int argc, char** argv) {
  nfc::lifecycle_test::g_self = argv[0];
  if (argc == 4 && std::string(argv[1]) == "--plugin-helper") {
    return nfc::lifecycle_test::PluginHelper(argv[2], argv[3]);
  }
  ::signal(SIGPIPE, SIG_IGN);
  ::testing::InitGoogleTest(&argc, argv);
  int rc = nfc::test_support::RunAllTestsReportingSkips();
  if (nfc::lifecycle_test::WarmStartMode()) {
    // The suite passing with warm_start on proves nothing unless its starts were warm.
    auto& starts = nfc::lifecycle_test::Starts();
    std::cout << "[warm start] " << starts.warm << " warm starts, " << starts.cold << " cold boots, "
              << starts.fallback << " fallbacks from a template that did not load\n";
    if (rc == 0 && (starts.warm < 5 || starts.fallback > 0)) {
      std::cout << "[warm start] FAILED: expected at least 5 warm starts and no fallback\n";
      rc = 1;
    }
  }
  if (rc == 0 && nfc::lifecycle_test::FirecrackerMode()) rc = nfc::lifecycle_test::CheckFirecrackerRequests();
  return rc;
}
