// fake-jailer (fake_jailer.cc) builds real jails: these run it as root with jail-probe as the exec file and
// check, from the probe's report and from the host side, what the real jailer documents: identity, devices,
// ownership, argv, rlimits, pid file, pid namespace, cgroups (this host's, and a stand-in v2 tree), netns,
// and that the jail's mounts never reach the host. Argument errors need no root.
// GCC 12 at -O2 (the release build) reports a false -Wmaybe-uninitialized on the temporaries of the
// initializer lists below; the sanitized build and clang do not.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "require.h"
#include "temp_dir.h"

namespace nfc::fakejailer {
namespace {

using namespace std::chrono_literals;
using Facts = std::map<std::string, std::string>;
namespace fs = std::filesystem;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream(path) << data;
}

Facts ParseFacts(const std::string& text) {
  Facts facts;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto eq = line.find('=');
    if (eq != std::string::npos) facts[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return facts;
}

std::string RandomHex() {
  std::random_device rd;
  std::ostringstream s;
  s << std::hex << rd() << rd();
  return s.str();
}

// The mount points of this (the host's) mount namespace under `prefix`.
std::vector<std::string> MountsUnder(const std::string& prefix) {
  std::vector<std::string> found;
  std::istringstream in(ReadFile("/proc/self/mountinfo"));
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, point;
    fields >> id >> parent >> dev >> root >> point;
    if (point.rfind(prefix, 0) == 0) found.push_back(point);
  }
  return found;
}

// A line of /proc/<pid>/status, without its key, tabs kept.
std::string StatusLine(pid_t pid, const std::string& key) {
  std::istringstream in(ReadFile("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key + ":\t", 0) == 0) return line.substr(key.size() + 2);
  return "";
}

// Exit code, 128+signal, or -1 when it had to be killed after `timeout`.
int WaitExit(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(5ms);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

struct Result {
  int code = -1;
  pid_t pid = -1;
  std::string out_path, err_path;
  std::string Out() const { return ReadFile(out_path); }
  std::string Err() const { return ReadFile(err_path); }
};

class FakeJailer : public ::testing::Test {
 protected:
  // Runs fake-jailer with stdout and stderr in files (a jailed process that outlives it keeps them open).
  Result Run(const std::vector<std::string>& args) {
    Result r;
    r.out_path = tmp_.Path("out" + std::to_string(runs_));
    r.err_path = tmp_.Path("err" + std::to_string(runs_++));
    std::vector<std::string> words = {NFC_FAKE_JAILER};
    words.insert(words.end(), args.begin(), args.end());
    std::vector<char*> argv;
    argv.reserve(words.size() + 1);
    for (auto& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    r.pid = fork();
    if (r.pid == 0) {
      int out = open(r.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int err = open(r.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (out < 0 || err < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) _exit(126);
      execv(argv[0], argv.data());
      _exit(127);
    }
    EXPECT_GT(r.pid, 0);
    if (r.pid > 0) r.code = WaitExit(r.pid, 60s);
    return r;
  }

  std::vector<std::string> BaseArgs() const {
    return {"--id",  id_,     "--exec-file", NFC_JAIL_PROBE,      "--uid",
            "65000", "--gid", "65001",       "--chroot-base-dir", tmp_.Path("base")};
  }
  std::string Root() const { return tmp_.Path("base/jail-probe/" + id_ + "/root"); }

  test_support::TempDir tmp_{"fj"};
  std::string id_ = "jt-" + RandomHex();
  int runs_ = 0;
};

// The cases that really jail: root. Processes and cgroup dirs they leave are removed in TearDown, processes
// first (a cgroup with tasks cannot be removed).
class FakeJailerAsRoot : public FakeJailer {
 protected:
  void SetUp() override {
    NFC_REQUIRE_OR_SKIP(::geteuid() == 0, "fake-jailer needs root (mount namespaces, mknod, chown, cgroups)");
    // With --new-pid-ns or --daemonize the jailed process outlives the jailer: it is re-parented to us.
    ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    mounts_before_ = MountsUnder(tmp_.path());
  }
  void TearDown() override {
    for (pid_t pid : to_kill_) KillAndReap(pid);
    for (auto it = cgroup_dirs_.rbegin(); it != cgroup_dirs_.rend(); ++it) RemoveCgroupDir(*it);
  }

  static void KillAndReap(pid_t pid) {
    kill(pid, SIGKILL);
    if (WaitExit(pid, 20s) == -1 && errno == ECHILD) {  // not ours after all: wait for it to go
      for (int i = 0; i < 2000 && kill(pid, 0) == 0; i++) std::this_thread::sleep_for(10ms);
    }
  }
  static void RemoveCgroupDir(const std::string& dir) {
    // A killed task may take a moment to leave its cgroup.
    for (int i = 0; i < 200 && rmdir(dir.c_str()) != 0 && errno == EBUSY; i++)
      std::this_thread::sleep_for(10ms);
    if (access(dir.c_str(), F_OK) == 0) ADD_FAILURE() << "cannot remove cgroup " << dir;
  }

  // The pid in the pid file, to be killed in TearDown. Waited for: after --daemonize the jailer exits before
  // the daemon writes it.
  pid_t PidFromFile() {
    std::string text;
    for (int i = 0; i < 2000 && (text = ReadFile(Root() + "/jail-probe.pid")).empty(); i++)
      std::this_thread::sleep_for(10ms);
    pid_t pid = text.empty() ? -1 : std::stoi(text);
    if (pid > 0) to_kill_.push_back(pid);
    return pid;
  }
  // The probe's report once it printed everything (in --sleep mode).
  static Facts WaitForSleepingProbe(const Result& r) {
    for (int i = 0; i < 2000; i++) {
      Facts f = ParseFacts(r.Out());
      if (f.count("sleeping")) return f;
      std::this_thread::sleep_for(10ms);
    }
    ADD_FAILURE() << "the probe did not report; stderr: " << r.Err();
    return {};
  }
  void ExpectNoHostMounts() const { EXPECT_EQ(MountsUnder(tmp_.path()), mounts_before_); }

  std::vector<pid_t> to_kill_;
  std::vector<std::string> cgroup_dirs_;  // parents before children
  std::vector<std::string> mounts_before_;
};

TEST_F(FakeJailerAsRoot, BuildsTheJailAndExecsInPlace) {
  fs::create_directories(Root());
  WriteFile(Root() + "/kernel", "vmlinux");
  auto args = BaseArgs();
  args.insert(args.end(), {"--stand-in-proc", "--", "extra-arg"});
  Result r = Run(args);
  ASSERT_EQ(r.code, 0) << r.Err();
  Facts f = ParseFacts(r.Out());
  EXPECT_EQ(f["uid"], "65000");
  EXPECT_EQ(f["euid"], "65000");
  EXPECT_EQ(f["gid"], "65001");
  EXPECT_EQ(f["egid"], "65001");
  EXPECT_EQ(f["groups"], "65001");
  EXPECT_EQ(f["status.CapEff"], "0000000000000000");
  EXPECT_EQ(f["status.NoNewPrivs"], "0");
  EXPECT_EQ(f["root.entries"], "dev,jail-probe,jail-probe.pid,kernel,proc,run");
  for (const auto& [dev, major, minor] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"/dev/net/tun", "10", "200"}, {"/dev/kvm", "10", "232"}, {"/dev/urandom", "1", "9"}}) {
    EXPECT_EQ(f[dev + ".type"], "char") << dev;
    EXPECT_EQ(f[dev + ".major"], major) << dev;
    EXPECT_EQ(f[dev + ".minor"], minor) << dev;
    EXPECT_EQ(f[dev + ".uid"], "65000") << dev;
    EXPECT_EQ(f[dev + ".gid"], "65001") << dev;
  }
  // /dev/userfaultfd only when the host has it, with the host's numbers.
  struct stat uffd {};
  if (stat("/dev/userfaultfd", &uffd) == 0 && S_ISCHR(uffd.st_mode)) {
    EXPECT_EQ(f["/dev/userfaultfd.minor"], std::to_string(minor(uffd.st_rdev)));
    EXPECT_EQ(f["/dev/userfaultfd.uid"], "65000");
  } else {
    EXPECT_EQ(f["/dev/userfaultfd.error"], "No such file or directory");
  }
  for (const std::string dir : {"/", "/dev", "/run"}) {
    EXPECT_EQ(f[dir + ".mode"], "0700") << dir;
    EXPECT_EQ(f[dir + ".uid"], "65000") << dir;
    EXPECT_EQ(f[dir + ".gid"], "65001") << dir;
  }
  EXPECT_EQ(f["argc"], "6");
  EXPECT_EQ(f["argv0"], "/jail-probe");
  EXPECT_EQ(f["argv1"], "--id=" + id_);
  EXPECT_EQ(f["argv2"].rfind("--start-time-us=", 0), 0u) << f["argv2"];
  EXPECT_EQ(f["argv3"].rfind("--start-time-cpu-us=", 0), 0u) << f["argv3"];
  EXPECT_EQ(f["argv4"].rfind("--parent-cpu-time-us=", 0), 0u) << f["argv4"];
  EXPECT_EQ(f["argv5"], "extra-arg");
  EXPECT_EQ(f["rlimit.nofile"], "2048");
  // exec in place: the process the test started is the probe.
  EXPECT_EQ(f["pid"], std::to_string(r.pid));
  EXPECT_EQ(ReadFile(Root() + "/jail-probe.pid"), std::to_string(r.pid));
  struct stat st {};
  ASSERT_EQ(stat((Root() + "/jail-probe").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(st.st_uid, 65000u);
  EXPECT_EQ(ReadFile(Root() + "/kernel"), "vmlinux");
  ExpectNoHostMounts();
}

TEST_F(FakeJailerAsRoot, NewPidNamespaceMakesTheProbePidOne) {
  auto args = BaseArgs();
  args.insert(args.end(),
              {"--new-pid-ns", "--stand-in-proc", "--resource-limit", "fsize=1048576", "--", "--sleep"});
  auto start = std::chrono::steady_clock::now();
  Result r = Run(args);
  ASSERT_EQ(r.code, 0) << r.Err();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  pid_t pid = PidFromFile();
  ASSERT_GT(pid, 0);
  EXPECT_NE(pid, r.pid);
  Facts f = WaitForSleepingProbe(r);
  EXPECT_EQ(StatusLine(pid, "NSpid"), std::to_string(pid) + "\t1");
  EXPECT_EQ(StatusLine(pid, "Uid"), "65000\t65000\t65000\t65000");
  EXPECT_EQ(f["pid"], "1");
  EXPECT_EQ(f["proc.pids"], "1");  // its own procfs shows its namespace only
  EXPECT_EQ(f["rlimit.fsize"], "1048576");
  KillAndReap(pid);
  EXPECT_NE(access(("/proc/" + std::to_string(pid)).c_str(), F_OK), 0);
  ExpectNoHostMounts();
}

TEST_F(FakeJailerAsRoot, DaemonizeDetachesOntoDevNull) {
  auto args = BaseArgs();
  args.insert(args.end(), {"--daemonize", "--", "--sleep"});
  Result r = Run(args);
  ASSERT_EQ(r.code, 0) << r.Err();
  pid_t pid = PidFromFile();
  ASSERT_GT(pid, 0);
  EXPECT_NE(pid, r.pid);
  for (int i = 0; i < 2000 && StatusLine(pid, "Uid").rfind("65000", 0) != 0; i++)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(StatusLine(pid, "Uid"), "65000\t65000\t65000\t65000");
  EXPECT_NE(getsid(pid), getsid(0));  // a session of its own
  EXPECT_EQ(fs::read_symlink("/proc/" + std::to_string(pid) + "/fd/1").string(), "/dev/null");
}

// Whether /proc/<pid>/cgroup (`table`) puts the process at `path` in `controller`'s hierarchy (v1), or in the
// unified one (controller "").
bool InCgroup(const std::string& table, const std::string& controller, const std::string& path) {
  std::istringstream in(table);
  for (std::string line; std::getline(in, line);) {
    auto c1 = line.find(':'), c2 = line.find(':', c1 + 1);
    if (c1 == std::string::npos || c2 == std::string::npos) continue;
    std::string names = "," + line.substr(c1 + 1, c2 - c1 - 1) + ",";
    bool hierarchy =
        controller.empty() ? names == ",," : names.find("," + controller + ",") != std::string::npos;
    if (hierarchy) return line.substr(c2 + 1) == path;
  }
  return false;
}

// This host's cgroups, v1 or v2, whichever it runs.
TEST_F(FakeJailerAsRoot, JoinsCgroupsOnThisHost) {
  const std::string root = "/sys/fs/cgroup";
  const bool v2 = access((root + "/cgroup.controllers").c_str(), F_OK) == 0;
  const std::string parent = "nfc-jailer-test-" + RandomHex(), rel = "/" + parent + "/" + id_;
  struct Limit {
    std::string controller, file, value;
  };
  const std::vector<Limit> limits = v2 ? std::vector<Limit>{{"memory", "memory.max", "268435456"},
                                                            {"pids", "pids.max", "77"},
                                                            {"cpu", "cpu.weight", "30"}}
                                       : std::vector<Limit>{{"memory", "memory.limit_in_bytes", "268435456"},
                                                            {"pids", "pids.max", "77"},
                                                            {"cpu", "cpu.shares", "300"}};
  auto args = BaseArgs();
  args.insert(args.end(), {"--cgroup-version", v2 ? "2" : "1", "--parent-cgroup", parent});
  std::map<std::string, std::string> dir_of;  // controller -> the jail's cgroup dir for it
  for (const auto& l : limits) {
    std::error_code ec;
    std::string mount = v2 ? root : fs::canonical(root + "/" + l.controller, ec).string();
    bool available =
        v2 ? (" " + ReadFile(root + "/cgroup.controllers")).find(" " + l.controller) != std::string::npos
           : !ec;
    NFC_REQUIRE_OR_SKIP(available, "cgroup controller " + l.controller + " on this host");
    dir_of[l.controller] = mount + rel;
    if (std::find(cgroup_dirs_.begin(), cgroup_dirs_.end(), mount + rel) == cgroup_dirs_.end())
      cgroup_dirs_.insert(cgroup_dirs_.end(), {mount + "/" + parent, mount + rel});
    args.insert(args.end(), {"--cgroup", l.file + "=" + l.value});
  }
  args.insert(args.end(), {"--new-pid-ns", "--", "--sleep"});
  Result r = Run(args);
  ASSERT_EQ(r.code, 0) << r.Err();
  pid_t pid = PidFromFile();
  ASSERT_GT(pid, 0);
  WaitForSleepingProbe(r);
  std::string table = ReadFile("/proc/" + std::to_string(pid) + "/cgroup");
  for (const auto& l : limits) {
    EXPECT_TRUE(InCgroup(table, v2 ? "" : l.controller, rel)) << l.controller << " in\n" << table;
    EXPECT_EQ(ReadFile(dir_of[l.controller] + "/" + l.file), l.value + "\n")
        << dir_of[l.controller] << "/" << l.file;
  }
}

class FakeCgroupV2Tree : public FakeJailerAsRoot {
 protected:
  void MakeTree(const std::string& controllers) {
    fs::create_directories(cg_);
    WriteFile(cg_ + "/cgroup.controllers", controllers);
    WriteFile(cg_ + "/cgroup.subtree_control", "");
  }
  std::vector<std::string> Args(const std::vector<std::string>& cgroups) const {
    auto args = BaseArgs();
    args.insert(args.end(),
                {"--stand-in-cgroup-root", cg_, "--cgroup-version", "2", "--parent-cgroup", "a/b"});
    for (const auto& c : cgroups) args.insert(args.end(), {"--cgroup", c});
    return args;
  }
  std::string cg_ = tmp_.Path("cg");
};

TEST_F(FakeCgroupV2Tree, EnablesControllersTopDownAndWritesValues) {
  MakeTree("cpu memory pids\n");
  Result r = Run(Args({"memory.max=1000", "pids.max=9", "cpu.weight=50"}));
  ASSERT_EQ(r.code, 0) << r.Err();
  // One append of "+ctrl\n" per controller, in the order of the --cgroup flags.
  for (const std::string dir : {"", "/a", "/a/b"})
    EXPECT_EQ(ReadFile(cg_ + dir + "/cgroup.subtree_control"), "+memory\n+pids\n+cpu\n") << dir;
  std::string leaf = cg_ + "/a/b/" + id_;
  EXPECT_EQ(ReadFile(leaf + "/memory.max"), "1000\n");
  EXPECT_EQ(ReadFile(leaf + "/pids.max"), "9\n");
  EXPECT_EQ(ReadFile(leaf + "/cpu.weight"), "50\n");
  EXPECT_EQ(ReadFile(leaf + "/cgroup.procs"), std::to_string(r.pid) + "\n");
}

TEST_F(FakeCgroupV2Tree, WithoutValuesMovesIntoTheExistingParent) {
  MakeTree("cpu memory pids\n");
  fs::create_directories(cg_ + "/a/b");
  Result r = Run(Args({}));
  ASSERT_EQ(r.code, 0) << r.Err();
  EXPECT_EQ(ReadFile(cg_ + "/a/b/cgroup.procs"), std::to_string(r.pid) + "\n");
  EXPECT_FALSE(fs::exists(cg_ + "/a/b/" + id_));
  EXPECT_EQ(ReadFile(cg_ + "/cgroup.subtree_control"), "");
}

TEST_F(FakeCgroupV2Tree, MissingControllerFailsNamingIt) {
  MakeTree("cpu memory\n");
  Result r = Run(Args({"memory.max=1000", "pids.max=9"}));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.Err().find("controller pids"), std::string::npos) << r.Err();
  EXPECT_FALSE(fs::exists(cg_ + "/a"));
}

TEST_F(FakeJailerAsRoot, JoinsTheNetworkNamespace) {
  int ready[2];
  ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
  pid_t holder = fork();  // keeps a new network namespace alive
  if (holder == 0) {
    char ok = unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
    if (write(ready[1], &ok, 1) != 1) _exit(1);
    for (;;) pause();
  }
  ASSERT_GT(holder, 0);
  to_kill_.push_back(holder);
  close(ready[1]);
  char ok = 0;
  ASSERT_EQ(read(ready[0], &ok, 1), 1);
  close(ready[0]);
  ASSERT_EQ(ok, 'y');
  std::string ns = "/proc/" + std::to_string(holder) + "/ns/net";
  struct stat want {};
  struct stat mine {};
  ASSERT_EQ(stat(ns.c_str(), &want), 0);
  ASSERT_EQ(stat("/proc/self/ns/net", &mine), 0);
  ASSERT_NE(want.st_ino, mine.st_ino);
  auto args = BaseArgs();
  args.insert(args.end(), {"--netns", ns, "--stand-in-proc"});
  Result r = Run(args);
  ASSERT_EQ(r.code, 0) << r.Err();
  EXPECT_EQ(ParseFacts(r.Out())["netns"], std::to_string(want.st_ino));
}

TEST_F(FakeJailerAsRoot, StandInBindsAreVisibleAndReadOnlyUnlessRw) {
  const std::string ro = tmp_.Path("ro"), rw = tmp_.Path("rw"), file = tmp_.Path("file.txt");
  fs::create_directories(ro);
  fs::create_directories(rw);
  fs::permissions(rw, fs::perms::all);
  WriteFile(ro + "/hello", "hi");
  WriteFile(file, "f");
  auto args = BaseArgs();
  args.insert(args.end(), {"--stand-in-bind", ro, "--stand-in-bind-rw", rw, "--stand-in-bind", file,
                           "--stand-in-exec-arg", "--stat=" + ro + "/hello", "--", "--write=" + ro + "/new",
                           "--write=" + rw + "/new", "--stat=" + file});
  Result r = Run(args);
  ASSERT_EQ(r.code, 0) << r.Err();
  Facts f = ParseFacts(r.Out());
  EXPECT_EQ(f["argv5"], "--stat=" + ro + "/hello");  // stand-in exec args come before the args after --
  EXPECT_EQ(f[ro + "/hello.type"], "file");
  EXPECT_EQ(f["write." + ro + "/new"], "Read-only file system");
  EXPECT_EQ(f["write." + rw + "/new"], "ok");
  EXPECT_EQ(f[file + ".type"], "file");
  EXPECT_TRUE(fs::exists(rw + "/new"));
  EXPECT_FALSE(fs::exists(ro + "/new"));
  ExpectNoHostMounts();
}

// Argument errors exit 1 before touching anything, and name the flag and the value; no root needed.
TEST_F(FakeJailer, ArgumentErrorsExitOneNamingFlagAndValue) {
  const std::string long_id(65, 'a');
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> named;
  };
  // Valid but for the case's change; the base dir is ours, should a case wrongly get through.
  std::vector<std::string> ok = {"--id", "x",     "--exec-file", NFC_JAIL_PROBE,      "--uid",
                                 "1",    "--gid", "1",           "--chroot-base-dir", tmp_.Path("base")};
  auto with = [&](std::vector<std::string> extra, size_t drop_at = ~size_t{0}) {
    auto a = ok;
    if (drop_at < a.size())
      a.erase(a.begin() + static_cast<long>(drop_at), a.begin() + static_cast<long>(drop_at) + 2);
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  std::vector<Case> cases = {
      {with({}, 0), {"--id"}},
      {with({"--id", "a/b"}, 0), {"--id", "a/b"}},
      {with({"--id=" + long_id}, 0), {"--id", long_id}},
      {with({"--uid", "abc"}, 4), {"--uid", "abc"}},
      {with({"--bogus", "1"}), {"--bogus"}},
      {with({"--cgroup-version", "3"}), {"--cgroup-version", "3"}},
      {with({"--resource-limit", "nofile=5"}), {"--resource-limit", "nofile=5"}},
      {with({"--cgroup", "nodot=1"}), {"--cgroup", "nodot=1"}},
      {with({"--stand-in-bind", "relative/path"}), {"--stand-in-bind", "relative/path"}},
  };
  for (const auto& c : cases) {
    Result r = Run(c.args);
    std::string err = r.Err();
    EXPECT_EQ(r.code, 1) << err;
    for (const auto& n : c.named)
      EXPECT_NE(err.find(n), std::string::npos) << "'" << n << "' not in: " << err;
  }
  EXPECT_FALSE(fs::exists(tmp_.Path("base")));
}

}  // namespace
}  // namespace nfc::fakejailer
