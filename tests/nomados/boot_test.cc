// NomadOS boot tests: build an image with `nomados build`, boot it under QEMU (TCG) with SeaBIOS and with
// UEFI (OVMF), user-mode networking with the agent's port forwarded, and check what nomad-init (host role)
// does: DHCP address, agent started and answering, crash -> restart, QMP system_powerdown -> SIGTERM to the
// agent, clean unmount, QEMU exits 0, data partition contents survive a reboot.
//
// The agent inside is a TEST DOUBLE (tests/nomados/test_agent.cc), not Nomad: Nomad is not packaged by
// Debian.
//
// Paths come from CMake: NOMADOS_BUILDER, NOMADOS_INIT, NOMADOS_TEST_AGENT, NOMADOS_AGENT_CONFIG,
// NOMADOS_WORK. Timings are printed (boot-to-agent), not asserted.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/process.h"
#include "base/unique_fd.h"
#include "free_port.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

const std::string kWork = NOMADOS_WORK;
const std::string kImageDir = kWork + "/image";

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Runs a command to completion with its output in a file; returns exit status and output.
std::pair<int, std::string> RunCommand(const std::vector<std::string>& argv,
                                       const std::vector<std::string>& env = {}) {
  std::string out_path = kWork + "/cmd.out";
  nfc::UniqueFd out(::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  nfc::SpawnOptions o;
  o.argv = argv;
  if (!env.empty()) {
    std::vector<std::string> e;
    for (char** p = environ; *p; p++) e.push_back(*p);
    e.insert(e.end(), env.begin(), env.end());
    o.env = e;
  }
  o.stdout_fd = o.stderr_fd = out.get();
  auto child = nfc::Spawn(o);
  if (!child.ok()) return {-1, child.error().message()};
  auto st = nfc::WaitForExit(child->pid);
  int status = st.ok() ? *st : -1;
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), Slurp(out_path)};
}

// One HTTP GET over the forwarded port. nullopt when nothing answered (QEMU's slirp accepts the connection
// even when the guest has no listener, then closes it: that reads as an empty reply).
std::optional<std::string> HttpGet(int port, const std::string& target) {
  nfc::UniqueFd s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  timeval tv{10, 0};
  setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return std::nullopt;
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: nomados\r\nConnection: close\r\n\r\n";
  if (write(s.get(), req.data(), req.size()) != static_cast<ssize_t>(req.size())) return std::nullopt;
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = read(s.get(), buf, sizeof buf)) > 0) resp.append(buf, static_cast<size_t>(n));
  if (resp.rfind("HTTP/1.1 200", 0) != 0) return std::nullopt;
  size_t body = resp.find("\r\n\r\n");
  return body == std::string::npos ? "" : resp.substr(body + 4);
}

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
    std::vector<std::string> argv = {
        "qemu-system-x86_64", "-M",
        // SMM: OVMF's Secure Boot variables are only writable from SMM.
        fw_ == Firmware::kSecureBoot ? "q35,smm=on" : "q35", "-accel", "tcg", "-cpu", "max", "-m", "1024",
        "-smp", "1", "-nodefaults", "-no-reboot", "-no-user-config", "-display", "none", "-serial",
        "file:" + serial_, "-drive", "file=" + disk_ + ",if=virtio,format=qcow2,cache=unsafe", "-netdev",
        "user,id=n0,hostfwd=tcp:127.0.0.1:" + std::to_string(port_) + "-:4646", "-device",
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
        pid_ = -1;
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
        pid_ = -1;
        return Serial().find(needle) != std::string::npos;
      }
    }
    return false;
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
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
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
  Firmware fw_;
  int port_ = 0;
  int boots_ = 0;
  pid_t pid_ = -1;
  nfc::UniqueFd log_fd_;
  Clock::time_point started_;
};

// Copy-on-write disk for one VM, on top of a built image (left untouched for the other tests).
std::string Overlay(const std::string& base, const std::string& base_format, const std::string& name) {
  std::string path = kWork + "/" + name + ".qcow2";
  fs::remove(path);
  auto [rc, out] =
      RunCommand({"qemu-img", "create", "-q", "-f", "qcow2", "-F", base_format, "-b", base, path});
  EXPECT_EQ(rc, 0) << out;
  return path;
}

struct GptPartition {
  std::string name;
  uint64_t first_lba = 0, last_lba = 0, attributes = 0;
};

// The GPT partition entries of a raw disk image (UEFI spec 5.3: header at LBA 1, entries where it says).
std::vector<GptPartition> ReadGpt(const std::string& raw) {
  std::vector<GptPartition> out;
  std::ifstream f(raw, std::ios::binary);
  char header[92];
  f.seekg(512);
  f.read(header, sizeof header);
  if (!f || std::string(header, 8) != "EFI PART") {
    ADD_FAILURE() << raw << ": no GPT header";
    return out;
  }
  auto u64 = [](const char* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
  };
  auto u32 = [](const char* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
  };
  uint64_t entries_lba = u64(header + 72);
  uint32_t count = u32(header + 80), size = u32(header + 84);
  std::vector<char> e(size);
  for (uint32_t i = 0; i < count; i++) {
    f.seekg(static_cast<std::streamoff>(entries_lba * 512 + uint64_t{i} * size));
    f.read(e.data(), size);
    if (!f || u64(e.data() + 32) == 0) continue;
    GptPartition p;
    p.first_lba = u64(e.data() + 32);
    p.last_lba = u64(e.data() + 40);
    p.attributes = u64(e.data() + 48);
    for (int c = 0; c < 36 && e[56 + 2 * c]; c++) p.name.push_back(e[56 + 2 * c]);  // UTF-16LE, ASCII names
    out.push_back(p);
  }
  return out;
}

// The data partition of a (powered-off) VM's disk as its own file, for dumpe2fs.
std::string ExtractDataPartition(const std::string& qcow2) {
  std::string raw = kWork + "/extract.raw", part = kWork + "/data-part.img";
  auto [rc, out] = RunCommand({"qemu-img", "convert", "-f", "qcow2", "-O", "raw", qcow2, raw});
  EXPECT_EQ(rc, 0) << out;
  uint64_t start = 0, count = 0;
  for (const auto& p : ReadGpt(raw)) {
    if (p.name == "nomados-data") {
      start = p.first_lba;
      count = p.last_lba - p.first_lba + 1;
    }
  }
  EXPECT_GT(start, 0u) << "no nomados-data partition";
  auto [rc3, out3] = RunCommand({"dd", "if=" + raw, "of=" + part, "bs=512", "skip=" + std::to_string(start),
                                 "count=" + std::to_string(count), "conv=sparse", "status=none"});
  EXPECT_EQ(rc3, 0) << out3;
  fs::remove(raw);
  return part;
}

class NomadOsBoot : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fs::create_directories(kWork);
    // NOMADOS_REUSE_IMAGE=1: iterate on the boot tests without rebuilding (never set in CI).
    if (fs::exists(kImageDir + "/nomados.raw") && getenv("NOMADOS_REUSE_IMAGE")) {
      build_ok_ = true;
      return;
    }
    auto t0 = Clock::now();
    auto [rc, out] = RunCommand(
        {NOMADOS_BUILDER, "build", "--init", NOMADOS_INIT, "--nomad", NOMADOS_TEST_AGENT, "--agent-config",
         NOMADOS_AGENT_CONFIG, "--kernel-package", "linux-image-cloud-amd64", "--out", kImageDir,
         "--data-size", "256M", "--cmdline", "nomados.stop_timeout=30 nomados.loglevel=debug"},
        {"NOMADOS_CACHE=" + kWork + "/cache"});
    build_output_ = out;
    build_ok_ = rc == 0;
    std::printf("[ figure ] nomados build: %.1f s\n",
                std::chrono::duration<double>(Clock::now() - t0).count());
    std::printf("%s", out.c_str());
  }
  void SetUp() override { ASSERT_TRUE(build_ok_) << "nomados build failed:\n" << build_output_; }

  static inline bool build_ok_ = false;
  static inline std::string build_output_;
};

// SeaBIOS, raw image: the whole lifecycle over two boots.
TEST_F(NomadOsBoot, BiosLifecycle) {
  std::string disk = Overlay(kImageDir + "/nomados.raw", "raw", "bios");
  Vm vm("bios", disk, Firmware::kBios);
  vm.Boot();
  double secs = vm.WaitForAgent(180s);
  ASSERT_GT(secs, 0);
  std::printf("[ figure ] BIOS: QEMU start -> agent answering: %.1f s (TCG)\n", secs);

  auto self = vm.Get("/v1/agent/self");
  ASSERT_TRUE(self);
  EXPECT_NE(self->find("\"test_double\":true"), std::string::npos);
  EXPECT_NE(self->find("=10.0.2.15\""), std::string::npos) << "no DHCP address from QEMU's slirp: " << *self;
  EXPECT_NE(self->find("agent.hcl"), std::string::npos)
      << "agent not started with the baked config: " << *self;
  int first_starts = Vm::Starts(*self);
  EXPECT_EQ(first_starts, 1);

  // DHCP's DNS server landed in resolv.conf (through the /etc -> /run link); df works for the fingerprint.
  auto resolv = vm.Get("/test/file?p=/etc/resolv.conf");
  ASSERT_TRUE(resolv);
  EXPECT_NE(resolv->find("nameserver 10.0.2.3"), std::string::npos) << *resolv;
  auto df = vm.Get("/test/df");
  ASSERT_TRUE(df);
  EXPECT_NE(df->find("exit=0"), std::string::npos) << *df;
  EXPECT_NE(df->find("/dev/vda3"), std::string::npos) << "data_dir is not on the data partition: " << *df;

  // Crash the agent: init restarts it (first back-off is 1 s).
  ASSERT_TRUE(vm.Get("/test/crash"));
  double crash_at = vm.WaitForAgent(60s, first_starts + 1);
  ASSERT_GT(crash_at, 0);
  self = vm.Get("/v1/agent/self");
  ASSERT_TRUE(self);
  EXPECT_EQ(Vm::Starts(*self), first_starts + 1);
  EXPECT_NE(vm.Serial().find("nomad exited"), std::string::npos);

  // Data for the next boot, then ACPI power button.
  ASSERT_TRUE(vm.Get("/test/write?v=survives-reboot-42"));
  vm.Qmp("system_powerdown");
  int rc = vm.WaitForExit(90s);
  std::string serial = vm.Serial();
  EXPECT_EQ(rc, 0) << serial.substr(serial.size() > 6000 ? serial.size() - 6000 : 0);
  EXPECT_NE(serial.find("shutting down: power button"), std::string::npos);
  EXPECT_NE(serial.find("TEST DOUBLE nomad agent: signal SIGTERM from pid 1"), std::string::npos);
  EXPECT_NE(serial.find("unmounted path=/var type=ext4"), std::string::npos);
  EXPECT_NE(serial.find("unmounted path=/data type=ext4"), std::string::npos);
  EXPECT_NE(serial.find("filesystems unmounted; poweroff"), std::string::npos);

  // The data partition was unmounted cleanly (no journal recovery pending).
  std::string part = ExtractDataPartition(disk);
  auto [drc, dump] = RunCommand({"dumpe2fs", "-h", part});
  EXPECT_EQ(drc, 0) << dump;
  EXPECT_NE(dump.find("Filesystem state:         clean"), std::string::npos) << dump;
  EXPECT_EQ(dump.find("needs_recovery"), std::string::npos) << dump;
  fs::remove(part);

  // Second boot from the same disk: the data and the SIGTERM record of the first boot are there.
  vm.Boot();
  secs = vm.WaitForAgent(180s);
  ASSERT_GT(secs, 0);
  std::printf("[ figure ] BIOS: second boot -> agent answering: %.1f s (TCG)\n", secs);
  auto value = vm.Get("/test/read");
  ASSERT_TRUE(value);
  EXPECT_EQ(*value, "survives-reboot-42");
  self = vm.Get("/v1/agent/self");
  ASSERT_TRUE(self);
  EXPECT_EQ(Vm::Starts(*self), first_starts + 2);
  EXPECT_NE(self->find("signal SIGTERM from pid 1"), std::string::npos) << *self;
  auto mid1 = vm.Get("/test/file?p=/etc/machine-id");
  ASSERT_TRUE(mid1);
  EXPECT_EQ(mid1->size(), 33u);

  // Ctrl-Alt-Del: the kernel tells PID 1 (SIGINT), which stops the agent and reboots (-no-reboot: QEMU exits
  // 0).
  vm.Qmp(
      "send-key",
      R"({"keys":[{"type":"qcode","data":"ctrl"},{"type":"qcode","data":"alt"},{"type":"qcode","data":"delete"}]})");
  rc = vm.WaitForExit(90s);
  serial = vm.Serial();
  EXPECT_EQ(rc, 0) << vm.Tail();
  EXPECT_NE(serial.find("shutting down: Ctrl-Alt-Del"), std::string::npos) << vm.Tail();
  EXPECT_NE(serial.find("TEST DOUBLE nomad agent: signal SIGTERM from pid 1"), std::string::npos);
  EXPECT_NE(serial.find("filesystems unmounted; reboot"), std::string::npos) << vm.Tail();
}

// UEFI (OVMF + systemd-boot), qcow2 image.
TEST_F(NomadOsBoot, UefiBootAndPowerdown) {
  std::string disk = Overlay(kImageDir + "/nomados.qcow2", "qcow2", "uefi");
  Vm vm("uefi", disk, Firmware::kUefi);
  vm.Boot();
  double secs = vm.WaitForAgent(240s);
  ASSERT_GT(secs, 0);
  std::printf("[ figure ] UEFI: QEMU start -> agent answering: %.1f s (TCG)\n", secs);
  auto self = vm.Get("/v1/agent/self");
  ASSERT_TRUE(self);
  EXPECT_NE(self->find("=10.0.2.15\""), std::string::npos) << *self;
  vm.Qmp("system_powerdown");
  int rc = vm.WaitForExit(90s);
  std::string serial = vm.Serial();
  EXPECT_EQ(rc, 0) << serial.substr(serial.size() > 6000 ? serial.size() - 6000 : 0);
  EXPECT_NE(serial.find("TEST DOUBLE nomad agent: signal SIGTERM from pid 1"), std::string::npos);
  EXPECT_NE(serial.find("filesystems unmounted; poweroff"), std::string::npos);
}

// A config drive (vfat labelled cidata, made with mtools) on a second disk: hostname from meta-data, a static
// address from nomados.cmdline, and the agent's config dir = baked agent.hcl + the drive's nomad/ files.
TEST_F(NomadOsBoot, ConfigDrive) {
  std::string drive = kWork + "/cidata.img", src = kWork + "/cidata-src";
  fs::remove(drive);
  fs::remove_all(src);
  fs::create_directories(src + "/nomad");
  std::ofstream(src + "/meta-data") << "instance-id: i-0123\nlocal-hostname: cloud-node-7\n";
  std::ofstream(src + "/nomados.cmdline") << "ip=10.0.2.15::10.0.2.2:255.255.255.0::eth0:off:10.0.2.3\n";
  std::ofstream(src + "/nomad/cloud.hcl") << "server_join { retry_join = [\"10.0.2.2\"] }\n";
  std::ofstream(src + "/nomad/ca.pem") << "-----BEGIN CERTIFICATE-----\n";
  std::vector<std::string> env = {"MTOOLS_SKIP_CHECK=1"};
  for (const auto& cmd : std::vector<std::vector<std::string>>{
           {"mformat", "-C", "-f", "1440", "-v", "cidata", "-i", drive, "::"},
           {"mcopy", "-s", "-i", drive, src + "/meta-data", src + "/nomados.cmdline", src + "/nomad",
            "::/"}}) {
    auto [rc, out] = RunCommand(cmd, env);
    ASSERT_EQ(rc, 0) << cmd[0] << ": " << out;
  }
  Vm vm("config-drive", Overlay(kImageDir + "/nomados.raw", "raw", "config-drive"), Firmware::kBios);
  vm.AddArgs({"-drive", "file=" + drive + ",if=virtio,format=raw,readonly=on"});
  vm.Boot();
  ASSERT_GT(vm.WaitForAgent(240s), 0);
  auto self = vm.Get("/v1/agent/self");
  ASSERT_TRUE(self);
  EXPECT_NE(self->find("\"hostname\":\"cloud-node-7\""), std::string::npos) << *self;
  for (const char* f : {"agent.hcl", "cloud.hcl", "ca.pem"}) {
    EXPECT_NE(self->find(std::string("\"") + f + "\""), std::string::npos) << f << " not in " << *self;
  }
  std::string serial = vm.Serial();
  EXPECT_NE(serial.find("config drive applied"), std::string::npos) << vm.Tail();
  EXPECT_NE(serial.find("instance_id=i-0123"), std::string::npos) << vm.Tail();
  EXPECT_NE(serial.find("network ready (static address from ip=)"), std::string::npos) << vm.Tail();
  EXPECT_EQ(serial.find("config drive /dev/"), std::string::npos) << "a problem was reported:\n" << vm.Tail();
  fs::remove(drive);
  fs::remove_all(src);
}

// The partition table: boot partition flagged "legacy BIOS bootable" (gptmbr.bin boots it), then system,
// data.
TEST_F(NomadOsBoot, GptLayout) {
  auto parts = ReadGpt(kImageDir + "/nomados.raw");
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].name, "nomados-boot");
  EXPECT_EQ(parts[0].first_lba, 2048u);
  EXPECT_EQ(parts[0].attributes & 4, 4u) << "legacy BIOS bootable attribute missing";
  EXPECT_EQ(parts[1].name, "nomados-system");
  EXPECT_EQ(parts[2].name, "nomados-data");
  EXPECT_GE((parts[2].last_lba - parts[2].first_lba + 1) * 512, 256u << 20);
}

// The vmdk output is a valid streamOptimized VMDK of the same disk.
TEST_F(NomadOsBoot, VmdkMatchesRaw) {
  auto [rc, info] = RunCommand({"qemu-img", "info", kImageDir + "/nomados.vmdk"});
  ASSERT_EQ(rc, 0) << info;
  EXPECT_NE(info.find("file format: vmdk"), std::string::npos) << info;
  EXPECT_NE(info.find("streamOptimized"), std::string::npos) << info;
  auto [rc2, cmp] = RunCommand({"qemu-img", "compare", "-f", "vmdk", "-F", "raw", kImageDir + "/nomados.vmdk",
                                kImageDir + "/nomados.raw"});
  EXPECT_EQ(rc2, 0) << cmp;
}

// Same inputs, same bytes: a second build (raw only) matches the suite's image bit for bit.
TEST_F(NomadOsBoot, BuildIsReproducible) {
  std::string again = kWork + "/image-again";
  fs::remove_all(again);
  auto [rc, out] = RunCommand(
      {NOMADOS_BUILDER, "build", "--init", NOMADOS_INIT, "--nomad", NOMADOS_TEST_AGENT, "--agent-config",
       NOMADOS_AGENT_CONFIG, "--kernel-package", "linux-image-cloud-amd64", "--out", again, "--data-size",
       "256M", "--formats", "raw", "--cmdline", "nomados.stop_timeout=30 nomados.loglevel=debug"},
      {"NOMADOS_CACHE=" + kWork + "/cache"});
  ASSERT_EQ(rc, 0) << out;
  auto [rc1, sum1] = RunCommand({"sha256sum", kImageDir + "/nomados.raw"});
  auto [rc2, sum2] = RunCommand({"sha256sum", again + "/nomados.raw"});
  ASSERT_EQ(rc1, 0);
  ASSERT_EQ(rc2, 0);
  EXPECT_EQ(sum1.substr(0, 64), sum2.substr(0, 64));
  EXPECT_EQ(Slurp(kImageDir + "/nomados.manifest"), Slurp(again + "/nomados.manifest"));
  fs::remove_all(again);
}

// Missing inputs fail fast with an error naming the option.
TEST_F(NomadOsBoot, BuilderNamesMissingInputs) {
  auto [rc, out] = RunCommand({NOMADOS_BUILDER, "build", "--init", NOMADOS_INIT, "--agent-config",
                               NOMADOS_AGENT_CONFIG, "--out", kWork + "/never"});
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("--nomad is required"), std::string::npos) << out;
  auto [rc2, out2] =
      RunCommand({NOMADOS_BUILDER, "build", "--init", NOMADOS_INIT, "--nomad", "/nonexistent/nomad",
                  "--agent-config", NOMADOS_AGENT_CONFIG, "--out", kWork + "/never"});
  EXPECT_NE(rc2, 0);
  EXPECT_NE(out2.find("--nomad '/nonexistent/nomad': no such file"), std::string::npos) << out2;
  auto [rc3, out3] =
      RunCommand({NOMADOS_BUILDER, "build", "--init", NOMADOS_TEST_AGENT, "--nomad", NOMADOS_TEST_AGENT,
                  "--agent-config", NOMADOS_AGENT_CONFIG, "--out", kWork + "/never", "--formats", "iso"});
  EXPECT_NE(rc3, 0);
  EXPECT_NE(out3.find("unknown format 'iso'"), std::string::npos) << out3;
}

// Secure Boot (own ctest entry, nomados_secure_boot_test): an image built with --secure-boot, booted by OVMF
// with Secure Boot enforced and the Microsoft keys enrolled.
class NomadOsSecureBoot : public ::testing::Test {
 protected:
  static inline const std::string kDir = kWork + "/image-secure-boot";

  static void SetUpTestSuite() {
    fs::create_directories(kWork);
    auto [rc, out] = RunCommand(
        {NOMADOS_BUILDER, "build", "--init", NOMADOS_INIT, "--nomad", NOMADOS_TEST_AGENT, "--agent-config",
         NOMADOS_AGENT_CONFIG, "--kernel-package", "linux-image-cloud-amd64", "--out", kDir, "--data-size",
         "256M", "--formats", "raw", "--secure-boot", "--cmdline", "nomados.loglevel=debug"},
        {"NOMADOS_CACHE=" + kWork + "/cache"});
    build_output_ = out;
    build_ok_ = rc == 0;
  }
  void SetUp() override {
    for (const char* f : {"/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"}) {
      ASSERT_TRUE(fs::exists(f)) << f << " missing (apt-get install ovmf)";
    }
    ASSERT_TRUE(build_ok_) << "nomados build --secure-boot failed:\n" << build_output_;
  }

  static inline bool build_ok_ = false;
  static inline std::string build_output_;
};

// Drops the Authenticode signature of a PE file: truncate at the certificate table, zero its directory entry
// (PE32+: optional header at e_lfanew + 24, data directory 4 at +144).
void StripPeSignature(const std::string& path) {
  std::string pe = Slurp(path);
  ASSERT_GT(pe.size(), 0x40u);
  uint32_t lfanew = 0, offset = 0, size = 0;
  std::memcpy(&lfanew, pe.data() + 0x3c, 4);
  size_t dir = lfanew + 24 + 144;
  ASSERT_LT(dir + 8, pe.size());
  std::memcpy(&offset, pe.data() + dir, 4);
  std::memcpy(&size, pe.data() + dir + 4, 4);
  ASSERT_GT(size, 0u) << path << " is not signed";
  ASSERT_LE(size_t{offset} + size, pe.size());
  pe.resize(offset);
  std::memset(pe.data() + dir, 0, 8);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << pe;
}

TEST_F(NomadOsSecureBoot, BootsWithSecureBootEnforced) {
  std::string disk = Overlay(kDir + "/nomados.raw", "raw", "secure-boot");
  Vm vm("secure-boot", disk, Firmware::kSecureBoot);
  vm.Boot();
  double secs = vm.WaitForAgent(300s);
  ASSERT_GT(secs, 0);
  std::printf("[ figure ] Secure Boot: QEMU start -> agent answering: %.1f s (TCG)\n", secs);
  std::string serial = vm.Serial();
  // The firmware told the kernel (EFI stub and the kernel's own check), and the kernel locked itself down.
  EXPECT_NE(serial.find("EFI stub: UEFI Secure Boot is enabled."), std::string::npos) << vm.Tail();
  EXPECT_NE(serial.find("secureboot: Secure boot enabled"), std::string::npos) << vm.Tail();
  EXPECT_NE(serial.find("Kernel is locked down from EFI Secure Boot"), std::string::npos) << vm.Tail();
  // Debian's signed modules still load under lockdown.
  EXPECT_NE(serial.find("nomad-init: loaded kernel module module=virtio_blk"), std::string::npos);
}

// The same image with the kernel's signature removed: shim's verifier (called by GRUB) refuses it.
TEST_F(NomadOsSecureBoot, UnsignedKernelIsRefused) {
  std::string raw = kWork + "/unsigned-kernel.raw", kernel = kWork + "/vmlinuz.unsigned";
  std::vector<std::string> mtools_env = {"MTOOLS_SKIP_CHECK=1"};
  auto [rc, out] = RunCommand({"cp", "--sparse=always", kDir + "/nomados.raw", raw});
  ASSERT_EQ(rc, 0) << out;
  fs::remove(kernel);
  auto [rc2, out2] = RunCommand({"mcopy", "-i", raw + "@@1M", "::/vmlinuz", kernel}, mtools_env);
  ASSERT_EQ(rc2, 0) << out2;
  StripPeSignature(kernel);
  auto [rc3, out3] = RunCommand({"mcopy", "-o", "-i", raw + "@@1M", kernel, "::/vmlinuz"}, mtools_env);
  ASSERT_EQ(rc3, 0) << out3;
  Vm vm("unsigned-kernel", Overlay(raw, "raw", "unsigned-kernel"), Firmware::kSecureBoot);
  vm.Boot();
  EXPECT_TRUE(vm.WaitForSerial("bad shim signature", 180s)) << vm.Tail();
  EXPECT_EQ(vm.Serial().find("Linux version"), std::string::npos) << vm.Tail();
  EXPECT_FALSE(vm.Get("/v1/agent/self"));
  fs::remove(raw);
  fs::remove(kernel);
}

}  // namespace
