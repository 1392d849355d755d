// nfc-harness-env: the environment the Go conformance harness's lifecycle scenarios run in.
//
//   nfc-harness-env --timeout SECONDS -- PROGRAM [ARGS...]
//
// Starts a local registry (TLS with a per-run CA, htpasswd basic auth) on loopback, pushes the busybox demo
// image (demo_image.h, the same image the C++ lifecycle tests run), then runs PROGRAM with the environment
// below, forwards its exit code, and always tears down: on PROGRAM's exit, on SIGINT/SIGTERM/SIGHUP and when
// the time limit passes (PROGRAM's process group gets SIGTERM, then SIGKILL 10 s later). Teardown SIGKILLs
// every process whose command line mentions the run directory (shims and VMMs of tasks a failed scenario left
// behind; all task state lives below that directory), stops the registry and removes the directory.
//
// Environment given to PROGRAM:
//   NFC_LC_DIR         run directory (scenarios put plugin data dirs below it); TMPDIR points below it too
//   NFC_LC_IMAGE       "<host>/demo:1"
//   NFC_LC_REGISTRY    "<host>" = 127.0.0.1:<port>
//   NFC_LC_CA_FILE     PEM file of the registry's CA (the plugin's ca_file)
//   NFC_LC_USERNAME, NFC_LC_PASSWORD   the registry's credentials
//   NFC_LC_KERNEL, NFC_LC_INITRD       guest kernel and initramfs (guest-artifacts target)
//   NFC_SHIM_PATH      the nomad-fc-shim binary the plugin starts
//
// Exit code: PROGRAM's; 77 (CTest SKIP_RETURN_CODE) when a prerequisite is missing on this machine, except in
// CI (CI=true) or as root, where that is 125 like any other setup failure (tests/common/prerequisite.h); 124
// when the time limit passed; 128+N when PROGRAM was killed by signal N; 125 when the environment could not
// start.
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/process.h"
#include "demo_image.h"
#include "prerequisite.h"
#include "registry_fixture.h"

namespace {

using namespace std::chrono_literals;

constexpr int kTimedOut = 124;
constexpr int kSetupFailed = 125;

volatile sig_atomic_t g_signal = 0;

void OnSignal(int sig) {
  g_signal = sig;
}

bool Readable(const std::string& path) {
  return ::access(path.c_str(), R_OK) == 0;
}

// A missing prerequisite: skipped on a developer's machine, a setup failure in CI or as root.
int MissingPrerequisite(const std::string& what) {
  std::string fails_because = nfc::test_support::MissingPrerequisiteFailsBecause();
  if (fails_because.empty()) {
    std::cout << "SKIP: " << what << "\n";
    return nfc::test_support::kSkippedExitCode;
  }
  std::cerr << "nfc-harness-env: missing prerequisite: " << what
            << " (a failure, not a skip: " << fails_because << ")\n";
  return kSetupFailed;
}

// Processes whose command line mentions `needle`, other than ourselves.
std::vector<pid_t> ProcessesMentioning(const std::string& needle) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (auto* e = ::readdir(d)) {
    pid_t pid = std::atoi(e->d_name);
    if (pid <= 0 || pid == ::getpid()) continue;
    std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
    std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmd.find(needle) != std::string::npos) out.push_back(pid);
  }
  ::closedir(d);
  return out;
}

// SIGKILLs what the run left behind (task shims and VMMs have their state below `dir`); returns how many.
int KillLeftovers(const std::string& dir) {
  int killed = 0;
  for (int round = 0; round < 50; round++) {
    std::vector<pid_t> left = ProcessesMentioning(dir);
    if (left.empty()) break;
    for (pid_t pid : left) {
      if (::kill(pid, SIGKILL) == 0 && round == 0) killed++;
    }
    std::this_thread::sleep_for(100ms);
  }
  return killed;
}

struct Args {
  int timeout_seconds = 540;
  std::vector<std::string> program;
};

bool ParseArgs(int argc, char** argv, Args* args) {
  int i = 1;
  for (; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--") {
      i++;
      break;
    }
    if (a == "--timeout" && i + 1 < argc) {
      args->timeout_seconds = std::atoi(argv[++i]);
      if (args->timeout_seconds <= 0) return false;
    } else {
      return false;
    }
  }
  for (; i < argc; i++) args->program.push_back(argv[i]);
  return !args->program.empty();
}

// Runs the program to completion or until the limit or a signal; returns the exit code to report.
int RunProgram(const Args& args, const std::vector<std::string>& env) {
  nfc::SpawnOptions o;
  o.argv = args.program;
  o.env = env;
  o.stdout_fd = 1;
  o.stderr_fd = 2;
  o.new_session = true;  // its own process group: the harness and the plugins it launches go together
  auto child = nfc::Spawn(o);
  if (!child.ok()) {
    std::cerr << "nfc-harness-env: starting " << args.program[0] << ": " << child.error().message() << "\n";
    return kSetupFailed;
  }
  pid_t pid = child->pid;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(args.timeout_seconds);
  std::optional<std::chrono::steady_clock::time_point> kill_at;
  int verdict = -1;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      ::kill(-pid, SIGKILL);  // anything of its group still around (plugins it launched)
      if (verdict >= 0) return verdict;
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      return 128 + WTERMSIG(status);
    }
    if (r < 0 && errno != EINTR) return kSetupFailed;
    auto now = std::chrono::steady_clock::now();
    if (!kill_at && (g_signal != 0 || now >= deadline)) {
      if (g_signal != 0) {
        std::cerr << "nfc-harness-env: got signal " << g_signal << ", stopping " << args.program[0] << "\n";
        verdict = 128 + g_signal;
      } else {
        std::cerr << "nfc-harness-env: " << args.program[0] << " still running after " << args.timeout_seconds
                  << " s, stopping it\n";
        verdict = kTimedOut;
      }
      ::kill(-pid, SIGTERM);
      kill_at = now + 10s;
    }
    if (kill_at && now >= *kill_at) ::kill(-pid, SIGKILL);
    std::this_thread::sleep_for(100ms);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!ParseArgs(argc, argv, &args)) {
    std::cerr << "usage: nfc-harness-env [--timeout SECONDS] -- PROGRAM [ARGS...]\n";
    return 2;
  }
  std::string guest = NFC_GUEST_DIR;
  std::string kernel = guest + "/vmlinux", initrd = guest + "/initramfs.cpio.gz";
  if (!Readable(kernel) || !Readable(initrd)) {
    return MissingPrerequisite("guest artifacts missing in " + guest + " (build the guest-artifacts target)");
  }
  for (const char* tool : {"/usr/bin/docker-registry", "/usr/bin/skopeo"}) {
    if (::access(tool, X_OK) != 0) {
      return MissingPrerequisite(std::string(tool) + " is not installed (scripts/packages.txt)");
    }
  }
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  char tmpl[] = "/tmp/nfc-lc-XXXXXX";
  if (!::mkdtemp(tmpl)) {
    std::perror("nfc-harness-env: mkdtemp");
    return kSetupFailed;
  }
  std::string dir = tmpl;
  int code = kSetupFailed;
  {
    const std::string user = "nomad", password = "s3cret-harness";
    auto started = std::chrono::steady_clock::now();
    auto registry = nfc::image::testing::LocalRegistry::Start(dir + "/registry", user, password);
    if (!registry.ok()) {
      std::cerr << "nfc-harness-env: local registry: " << registry.error().message() << "\n";
    } else if (auto image = nfc::lifecycle_test::PushDemoImage(registry->get(), dir); !image.ok()) {
      std::cerr << "nfc-harness-env: demo image: " << image.error().message() << "\n";
    } else if (g_signal == 0) {
      std::cout << "nfc-harness-env: registry " << (*registry)->host() << " holds " << *image
                << " (set up in "
                << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                         started)
                       .count()
                << " ms)" << std::endl;
      std::string tmp = dir + "/tmp";
      ::mkdir(tmp.c_str(), 0700);
      std::vector<std::string> env;
      for (char** e = environ; *e; e++) {
        std::string kv = *e;
        if (kv.rfind("NFC_LC_", 0) == 0 || kv.rfind("TMPDIR=", 0) == 0 || kv.rfind("NFC_SHIM_PATH=", 0) == 0)
          continue;
        env.push_back(kv);
      }
      env.push_back("NFC_LC_DIR=" + dir);
      env.push_back("NFC_LC_IMAGE=" + *image);
      env.push_back("NFC_LC_REGISTRY=" + (*registry)->host());
      env.push_back("NFC_LC_CA_FILE=" + (*registry)->ca_file());
      env.push_back("NFC_LC_USERNAME=" + user);
      env.push_back("NFC_LC_PASSWORD=" + password);
      env.push_back("NFC_LC_KERNEL=" + kernel);
      env.push_back("NFC_LC_INITRD=" + initrd);
      env.push_back(std::string("NFC_SHIM_PATH=") + NFC_SHIM_BINARY);
      env.push_back("TMPDIR=" + tmp);
      code = RunProgram(args, env);
    }
    if (registry.ok()) registry->reset();  // stop the registry first: its command line names `dir` too
    if (int n = KillLeftovers(dir); n > 0) {
      // The scenarios check that each task leaves nothing behind; a leftover here is a leak they missed.
      std::cerr << "nfc-harness-env: killed " << n << " leftover process(es) of the run (a leak)\n";
      if (code == 0) code = 1;
    }
  }
  std::string rm = "rm -rf '" + dir + "'";
  if (std::system(rm.c_str()) != 0) std::cerr << "nfc-harness-env: could not remove " << dir << "\n";
  return code;
}
