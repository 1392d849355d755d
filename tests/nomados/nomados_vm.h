// Shared by the NomadOS boot tests (boot_test.cc, secure_boot_test.cc, cloud_config_test.cc): running
// commands, QEMU machines booting a built image (Vm), disk inspection, and the fixture that builds the image
// the NomadOsBoot tests share. Paths come from CMake: NOMADOS_BUILDER, NOMADOS_INIT, NOMADOS_TEST_AGENT,
// NOMADOS_AGENT_CONFIG, NOMADOS_WORK.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/process.h"
#include "base/unique_fd.h"
#include "free_port.h"

namespace nomados_test {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

inline const std::string kWork = NOMADOS_WORK;
inline const std::string kImageDir = kWork + "/image";
// The suite image's extra command line. The metadata service is off: under QEMU's user networking the guest
// would otherwise reach whatever answers at 169.254.169.254 on the build machine; the Metadata test turns it
// on in a copy of the image.
inline const std::string kImageCmdline =
    "nomados.stop_timeout=30 nomados.loglevel=debug nomados.metadata=off";

std::string Slurp(const std::string& path);
// Runs a command to completion with its output in a file; returns exit status and output.
std::pair<int, std::string> RunCommand(const std::vector<std::string>& argv,
                                       const std::vector<std::string>& env = {});
// One HTTP GET over the forwarded port. nullopt when nothing answered (QEMU's slirp accepts the connection
// even when the guest has no listener, then closes it: that reads as an empty reply).
std::optional<std::string> HttpGet(int port, const std::string& target);

enum class Firmware { kBios, kUefi, kSecureBoot };

class Vm {
 public:
  Vm(std::string name, std::string disk, Firmware fw)
      : name_(std::move(name)), disk_(std::move(disk)), fw_(fw) {
    dir_ = kWork + "/vm-" + name_;
    fs::create_directories(dir_);
  }
  ~Vm() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      (void)nfc::WaitForExit(pid_);
    }
  }

  void Boot() {
    port_ = nfc::test_support::FreeLoopbackPort();
    serial_ = dir_ + "/serial-" + std::to_string(++boots_) + ".log";
    // A log left by an earlier run would be read before QEMU truncates it: a check could pass on old output.
    fs::remove(serial_);
    std::vector<std::string> argv = {
        "qemu-system-x86_64", "-M",
        // SMM: OVMF's Secure Boot variables are only writable from SMM.
        fw_ == Firmware::kSecureBoot ? "q35,smm=on" : "q35", "-accel", "tcg", "-cpu", "max", "-m", "1024",
        "-smp", "1", "-nodefaults", "-no-reboot", "-no-user-config", "-display", "none", "-serial",
        "file:" + serial_, "-drive", "file=" + disk_ + ",if=virtio,format=qcow2,cache=unsafe", "-netdev",
        "user,id=n0,hostfwd=tcp:127.0.0.1:" + std::to_string(port_) + "-:4646" + netdev_options_, "-device",
        "virtio-net-pci,netdev=n0", "-qmp", "unix:" + dir_ + "/qmp.sock,server=on,wait=off"};
    argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
    if (fw_ == Firmware::kUefi) {
      std::string vars = dir_ + "/OVMF_VARS.fd";
      if (!fs::exists(vars)) fs::copy_file("/usr/share/OVMF/OVMF_VARS_4M.fd", vars);
      argv.insert(argv.end(),
                  {"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
                   "-drive", "if=pflash,format=raw,unit=1,file=" + vars});
    }
    if (fw_ == Firmware::kSecureBoot) {
      // Debian's OVMF build with Secure Boot and the Microsoft keys enrolled (shim is signed by Microsoft).
      std::string vars = dir_ + "/OVMF_VARS.fd";
      if (!fs::exists(vars)) fs::copy_file("/usr/share/OVMF/OVMF_VARS_4M.ms.fd", vars);
      argv.insert(argv.end(),
                  {"-global", "driver=cfi.pflash01,property=secure,value=on", "-drive",
                   "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
                   "-drive", "if=pflash,format=raw,unit=1,file=" + vars});
    }
    log_fd_.Reset(::open((dir_ + "/qemu.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    nfc::SpawnOptions o;
    o.argv = argv;
    o.stdout_fd = o.stderr_fd = log_fd_.get();
    auto child = nfc::Spawn(o);
    ASSERT_TRUE(child.ok()) << child.error().message();
    pid_ = child->pid;
    exit_code_ = -1;
    started_ = Clock::now();
  }

  // Polls the agent until it answers; returns seconds since QEMU started.
  double WaitForAgent(std::chrono::seconds timeout, int min_starts = 0) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      auto self = HttpGet(port_, "/v1/agent/self");
      if (self && Starts(*self) >= min_starts) {
        return std::chrono::duration<double>(Clock::now() - started_).count();
      }
      int status;
      if (pid_ > 0 && waitpid(pid_, &status, WNOHANG) == pid_) {
        Reaped(status);
        ADD_FAILURE() << "QEMU exited before the agent answered; serial:\n" << Tail();
        return -1;
      }
      std::this_thread::sleep_for(500ms);
    }
    ADD_FAILURE() << "agent did not answer within " << timeout.count() << " s; serial:\n" << Tail();
    return -1;
  }

  std::optional<std::string> Get(const std::string& target) { return HttpGet(port_, target); }

  // Waits until the serial console shows `needle`; false on timeout or QEMU exit.
  bool WaitForSerial(const std::string& needle, std::chrono::seconds timeout) {
    for (auto deadline = Clock::now() + timeout; Clock::now() < deadline;
         std::this_thread::sleep_for(500ms)) {
      if (Serial().find(needle) != std::string::npos) return true;
      int status;
      if (pid_ > 0 && waitpid(pid_, &status, WNOHANG) == pid_) {
        Reaped(status);
        return Serial().find(needle) != std::string::npos;
      }
    }
    return false;
  }

  // The kernel's "Kernel command line: ..." line of this boot once it is complete (the serial log is written
  // as the characters come); empty on timeout or QEMU exit.
  std::string WaitForCommandLine(std::chrono::seconds timeout) {
    const std::string needle = "Kernel command line:";
    for (auto deadline = Clock::now() + timeout; Clock::now() < deadline;
         std::this_thread::sleep_for(200ms)) {
      std::string s = Serial();
      size_t at = s.find(needle), nl = at == std::string::npos ? at : s.find('\n', at);
      if (nl != std::string::npos) return s.substr(at, nl - at);
      int status;
      if (pid_ > 0 && waitpid(pid_, &status, WNOHANG) == pid_) Reaped(status);
      if (pid_ < 0) return "";
    }
    return "";
  }

  void Qmp(const std::string& command, const std::string& arguments = "") {
    nfc::UniqueFd s(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::string path = dir_ + "/qmp.sock";
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    ASSERT_EQ(connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << "QMP connect " << path;
    timeval tv{10, 0};
    setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    auto read_line = [&]() {
      std::string line;
      char c;
      while (read(s.get(), &c, 1) == 1 && c != '\n') line.push_back(c);
      return line;
    };
    ASSERT_NE(read_line().find("QMP"), std::string::npos);  // greeting
    std::string caps = "{\"execute\":\"qmp_capabilities\"}\n";
    ASSERT_EQ(write(s.get(), caps.data(), caps.size()), static_cast<ssize_t>(caps.size()));
    ASSERT_NE(read_line().find("return"), std::string::npos);
    std::string cmd =
        "{\"execute\":\"" + command + "\"" + (arguments.empty() ? "" : ",\"arguments\":" + arguments) + "}\n";
    ASSERT_EQ(write(s.get(), cmd.data(), cmd.size()), static_cast<ssize_t>(cmd.size()));
    std::string reply;
    do {
      reply = read_line();
    } while (!reply.empty() && reply.find("\"event\"") != std::string::npos);
    ASSERT_NE(reply.find("return"), std::string::npos) << reply;
  }

  // Waits for QEMU to exit; returns its exit code (-1 on timeout, then it is killed).
  int WaitForExit(std::chrono::seconds timeout) {
    // Reaped already (a wait above saw it exit): its status. Never kill(-1, ...).
    if (pid_ <= 0) return exit_code_;
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        Reaped(status);
        return exit_code_;
      }
      std::this_thread::sleep_for(200ms);
    }
    ::kill(pid_, SIGKILL);
    (void)nfc::WaitForExit(pid_);
    pid_ = -1;
    return -1;
  }

  std::string Serial() const { return Slurp(serial_); }
  std::string Tail() const {
    std::string s = Serial();
    return s.size() > 6000 ? s.substr(s.size() - 6000) : s;
  }
  const std::string& dir() const { return dir_; }
  // More -netdev user options (",net=...,guestfwd=..."), for the next Boot().
  void SetNetdevOptions(const std::string& options) { netdev_options_ = "," + options; }
  void AddArgs(const std::vector<std::string>& args) {
    extra_args_.insert(extra_args_.end(), args.begin(), args.end());
  }

  static int Starts(const std::string& self_json) {
    size_t p = self_json.find("\"starts\":");
    return p == std::string::npos ? -1 : std::atoi(self_json.c_str() + p + 9);
  }

 private:
  std::string name_, disk_, dir_, serial_;
  std::vector<std::string> extra_args_;
  std::string netdev_options_;
  Firmware fw_;
  int port_ = 0;
  int boots_ = 0;
  void Reaped(int status) {
    pid_ = -1;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  pid_t pid_ = -1;
  int exit_code_ = -1;
  nfc::UniqueFd log_fd_;
  Clock::time_point started_;
};

// Copy-on-write disk for one VM, on top of a built image (left untouched for the other tests).
std::string Overlay(const std::string& base, const std::string& base_format, const std::string& name);

struct GptPartition {
  std::string name;
  uint64_t first_lba = 0, last_lba = 0, attributes = 0;
};

// The GPT partition entries of a raw disk image (UEFI spec 5.3: header at LBA 1, entries where it says).
std::vector<GptPartition> ReadGpt(const std::string& raw);
// The data partition of a (powered-off) VM's disk as its own file, for dumpe2fs.
std::string ExtractDataPartition(const std::string& qcow2);

// The image every NomadOsBoot test boots: built once per run (cloud kernel, the test double as Nomad).
class NomadOsBoot : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  void SetUp() override { ASSERT_TRUE(build_ok_) << "nomados build failed:\n" << build_output_; }

  static inline bool build_ok_ = false;
  static inline std::string build_output_;
};

}  // namespace nomados_test
