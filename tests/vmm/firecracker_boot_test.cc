// Real guests on the Firecracker backend (label `vm`): the backend drives the Firecracker stand-in
// (tests/fake-firecracker, --boot-qemu) exactly as it would drive Firecracker, once per API spec version; the
// stand-in validates every request against that version's spec and boots the configured VM in QEMU microvm
// under TCG. nomad-init is reached through Firecracker's hybrid vsock framing ("CONNECT 1024\n" / "OK n\n"),
// relayed by the stand-in to the guest's virtio-serial port.
//
// Version 1.7.0 has no ACPI: the guest finds its disks only through virtio_mmio.device= arguments. With the
// Debian kernel (no VIRTIO_MMIO_CMDLINE_DEVICES) the backend must refuse the start; with the tuned kernel
// (tuned_kernel_boot.sh runs this binary against it) the guest must boot. Which kernel the guest dir holds is
// read from its kernel.env, not from the code under test.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "base/process.h"
#include "guest/initramfs_cpio.h"
#include "guest/task_spec.h"
#include "guest_boot.h"
#include "require.h"
#include "sandbox/cgroup.h"

namespace nfc::vmm::testing {
namespace {

using namespace std::chrono_literals;

constexpr auto kBootTimeout = 120s;

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

bool GuestKernelIsTuned(const GuestArtifacts& artifacts) {
  std::string env = ReadFile(artifacts.vmlinux.substr(0, artifacts.vmlinux.rfind('/')) + "/kernel.env");
  return env.find("PACKAGE=linux-source-6.1") != std::string::npos;
}

class FirecrackerBootTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    NFC_REQUIRE_OR_SKIP(access("/usr/bin/qemu-system-x86_64", X_OK) == 0, "qemu-system-x86 is not installed");
    artifacts_ = GuestArtifacts::Find();
    ASSERT_TRUE(artifacts_.ok()) << "guest artifacts missing: build the guest-artifacts target";
    auto w = GuestWorkdir::Create();
    ASSERT_TRUE(w.ok()) << w.error().message();
    work_ = std::move(w).value();
    record_ = work_->dir() + "/requests.jsonl";
    auto fc =
        WriteFirecrackerStandIn(work_->dir(), NFC_FAKE_FIRECRACKER, NFC_FC_SPEC_DIR, GetParam(), record_);
    ASSERT_TRUE(fc.ok()) << fc.error().message();
    options_.backend = Backend::kFirecracker;
    options_.vmm_binary = *fc;
    options_.vmm_log_path = work_->dir() + "/firecracker.log";
    options_.metrics_path = work_->dir() + "/firecracker.metrics";
  }

  // Version 1.7.0 with a kernel that cannot boot on it must be refused before the VM starts.
  bool Refused17() const { return GetParam() == "1.7.0" && !GuestKernelIsTuned(artifacts_); }

  // Boots, or (Refused17) checks the refusal and returns nullopt.
  std::optional<BootedGuest> Boot(const std::string& name, const std::vector<std::string>& argv) {
    auto b = BootGuest(artifacts_, *work_, name, argv, kBootTimeout, options_);
    if (Refused17()) {
      EXPECT_FALSE(b.ok());
      if (b.ok()) return std::nullopt;
      EXPECT_EQ(b.error().code(), ErrorCode::kFailedPrecondition) << b.error().message();
      EXPECT_NE(
          b.error().message().find("Firecracker 1.7.0 announces virtio devices only as virtio_mmio.device="),
          std::string::npos)
          << b.error().message();
      for (const auto& c : Requests()) EXPECT_NE(c["path"], "/actions") << "the VM was started anyway: " << c;
      return std::nullopt;
    }
    EXPECT_TRUE(b.ok()) << b.error().message();
    if (!b.ok()) {
      DumpOnFailure(name);
      return std::nullopt;
    }
    return std::move(b).value();
  }

  std::vector<nlohmann::json> Requests() {
    std::vector<nlohmann::json> calls;
    std::ifstream f(record_);
    for (std::string line; std::getline(f, line);) calls.push_back(nlohmann::json::parse(line));
    return calls;
  }

  // Every request the backend sent was valid for this version: none refused, none answered outside the spec.
  void ExpectRequestsAccepted() {
    auto calls = Requests();
    EXPECT_FALSE(calls.empty());
    for (const auto& c : calls) {
      EXPECT_LT(c["status"].get<int>(), 300) << c;
      EXPECT_FALSE(c.contains("fake_bug")) << c;
    }
  }

  void DumpOnFailure(const std::string& name) {
    if (!HasFailure()) return;
    std::cerr << "---- console of " << name << "\n" << ReadFile(work_->dir() + "/" + name + ".console.log");
    std::cerr << "---- stand-in stderr\n" << ReadFile(work_->dir() + "/firecracker.stderr");
  }

  GuestArtifacts artifacts_;
  std::unique_ptr<GuestWorkdir> work_;
  std::string record_;
  BootOptions options_;
};

TEST_P(FirecrackerBootTest, RunsACommandOverHybridVsockAndEndsWithTheGuestReset) {
  auto b = Boot("exit7", {"/bin/sh", "-c", "echo hello from the guest; echo to stderr >&2; exit 7"});
  if (!b) return;
  EXPECT_EQ(b->vmm->Record().vmm_version, GetParam());
  auto w = CollectWorkload(*b->agent, kBootTimeout);
  ASSERT_TRUE(w.ok()) << w.error().message();
  EXPECT_EQ(w->exit.exit_code, 7);
  EXPECT_EQ(w->out, "hello from the guest\n");
  EXPECT_EQ(w->err, "to stderr\n");
  // nomad-init reboots once the exit is acknowledged; reboot=k resets the CPU and Firecracker exits 0.
  auto exit = b->vmm->Wait(kBootTimeout);
  ASSERT_TRUE(exit.ok()) << exit.error().message();
  EXPECT_EQ(exit->kind, VmExit::Kind::kGuestStopped) << exit->detail;
  EXPECT_EQ(exit->wait_status, 0) << exit->detail;
  ExpectRequestsAccepted();
  // The serial console came through Firecracker's stdout; the logger and metrics files were written.
  EXPECT_NE(ReadFile(work_->dir() + "/exit7.console.log").find("Linux version"), std::string::npos);
  EXPECT_NE(ReadFile(options_.vmm_log_path).find("Running Firecracker v" + GetParam()), std::string::npos);
  EXPECT_NE(ReadFile(options_.metrics_path).find("\"utc_timestamp_ms\""), std::string::npos);
  DumpOnFailure("exit7");
}

TEST_P(FirecrackerBootTest, SendCtrlAltDelStopsTheWorkloadGracefully) {
  auto b = Boot("graceful", {"/bin/sleep", "1000"});
  if (!b) return;
  ASSERT_TRUE(b->vmm->RequestShutdown().ok());
  auto w = CollectWorkload(*b->agent, kBootTimeout);
  ASSERT_TRUE(w.ok()) << w.error().message();
  EXPECT_EQ(w->exit.signal, SIGTERM) << "exit code " << w->exit.exit_code;
  auto exit = b->vmm->Wait(kBootTimeout);
  ASSERT_TRUE(exit.ok()) << exit.error().message();
  EXPECT_EQ(exit->kind, VmExit::Kind::kGuestStopped) << exit->detail;
  bool sent_cad = false;
  for (const auto& c : Requests()) {
    if (c["path"] == "/actions" && c["body"]["action_type"] == "SendCtrlAltDel")
      sent_cad = c["status"] == 204;
  }
  EXPECT_TRUE(sent_cad);
  DumpOnFailure("graceful");
}

TEST_P(FirecrackerBootTest, KilledFirecrackerTakesItsGuestAlong) {
  auto b = Boot("crash", {"/bin/sleep", "1000"});
  if (!b) return;
  ASSERT_EQ(::kill(b->vmm->Record().pid, SIGKILL), 0);
  auto exit = b->vmm->Wait(30s);
  ASSERT_TRUE(exit.ok()) << exit.error().message();
  EXPECT_EQ(exit->kind, VmExit::Kind::kVmmCrashed);
  EXPECT_NE(exit->detail.find("signal 9"), std::string::npos) << exit->detail;
  // The guest's channel is gone with it: nothing of the VM runs on.
  auto again = b->vmm->ConnectGuest(guest::kDefaultVsockPort, 1s);
  EXPECT_FALSE(again.ok());
}

// Firecracker has no power-off (vmm.md 2.2): a guest that powers off halts and the process stays until it is
// killed. On 1.8+ the stand-in's QEMU reports the ACPI power-off and exits, and the stand-in stays up; before
// 1.8 there is no ACPI and the halted guest just sits there.
TEST_P(FirecrackerBootTest, GuestPowerOffHaltsTheGuestAndFirecrackerStays) {
  auto b = Boot("poweroff", {"/bin/busybox", "poweroff", "-f"});
  if (!b) return;
  // With ACPI (1.8+) the kernel powers off ("Power down"); without it (1.7) it can only halt ("System
  // halted").
  std::string console = work_->dir() + "/poweroff.console.log";
  auto ended = [&] {
    std::string text = ReadFile(console);
    return text.find("reboot: Power down") != std::string::npos ||
           text.find("reboot: System halted") != std::string::npos;
  };
  for (int i = 0; i < 600 && !ended(); i++) std::this_thread::sleep_for(100ms);
  if (!ended()) {
    ADD_FAILURE() << "the guest never powered off";
    DumpOnFailure("poweroff");
    return;
  }
  auto still = b->vmm->Wait(3s);
  ASSERT_FALSE(still.ok()) << "Firecracker ended: " << still->detail;
  EXPECT_EQ(still.error().code(), ErrorCode::kTimeout);
  ASSERT_TRUE(b->vmm->Kill().ok());
  auto exit = b->vmm->Wait(30s);
  ASSERT_TRUE(exit.ok()) << exit.error().message();
  EXPECT_EQ(exit->kind, VmExit::Kind::kKilled) << exit->detail;
  DumpOnFailure("poweroff");
}

// Warm start's VMM layer (docs/warm-start.md): PATCH /vm Paused and PUT /snapshot/create; then a fresh
// Firecracker gets PUT /snapshot/load (vsock_override and clock_realtime on 1.16), PATCH /drives for each
// drive, PATCH /vm Resumed, and the same guest carries on: same boot id, the rest of its output, its exit
// code. Before 1.16 an unjailed VM's vsock socket cannot be repointed: the restore is refused before
// anything is loaded (the caller then boots cold).
TEST_P(FirecrackerBootTest, SnapshotThenRestoreCarriesOnTheSameGuest) {
  const std::vector<std::string> argv = {"/bin/sh", "-c", "echo before; sleep 2; echo after; exit 3"};
  auto b = Boot("snap", argv);
  if (!b) return;
  uint64_t boot_id = b->agent->boot_id();
  ASSERT_TRUE(AwaitOutput(*b->agent, "before\n", kBootTimeout).ok());
  SnapshotFiles files{work_->dir() + "/snap.state", work_->dir() + "/snap.mem"};
  Status saved = b->vmm->Snapshot(files);
  ASSERT_TRUE(saved.ok()) << saved.error().message();
  b->agent.reset();
  ASSERT_TRUE(b->vmm->Kill().ok());
  ASSERT_TRUE(b->vmm->Wait(kBootTimeout).ok());
  size_t before_restore = Requests().size();

  BootOptions restore = options_;
  restore.restore_from = files;
  auto r = BootGuest(artifacts_, *work_, "snap", argv, kBootTimeout, restore);
  auto calls = Requests();
  std::vector<nlohmann::json> later(calls.begin() + static_cast<long>(before_restore), calls.end());
  if (GetParam() != "1.16.1") {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition) << r.error().message();
    EXPECT_NE(r.error().message().find("vsock_override came in 1.16"), std::string::npos)
        << r.error().message();
    for (const auto& c : later) EXPECT_NE(c["path"], "/snapshot/load") << c;
    return;
  }
  if (!r.ok()) {
    ADD_FAILURE() << r.error().message();
    DumpOnFailure("snap");
    return;
  }
  EXPECT_EQ(r->agent->boot_id(), boot_id);
  auto w = CollectWorkload(*r->agent, kBootTimeout);
  ASSERT_TRUE(w.ok()) << w.error().message();
  EXPECT_EQ(w->exit.exit_code, 3);
  EXPECT_EQ(w->out, "before\nafter\n");

  // The sequence, each request valid for the spec and accepted.
  ExpectRequestsAccepted();
  std::vector<std::string> create, load;
  for (size_t i = 0; i < calls.size(); i++) {
    std::string call = calls[i]["method"].get<std::string>() + " " + calls[i]["path"].get<std::string>();
    if (call.find("snapshot") != std::string::npos || call.find("PATCH") == 0)
      (i < before_restore ? create : load).push_back(call);
  }
  EXPECT_EQ(create, (std::vector<std::string>{"PATCH /vm", "PUT /snapshot/create"}));
  EXPECT_EQ(load, (std::vector<std::string>{"PUT /snapshot/load", "PATCH /drives/root",
                                            "PATCH /drives/scratch", "PATCH /vm"}));
  for (const auto& c : later) {
    EXPECT_NE(c["path"], "/boot-source") << "a restore configures nothing but the sinks: " << c;
    EXPECT_NE(c["path"], "/actions") << c;
    if (c["path"] != "/snapshot/load") continue;
    EXPECT_EQ(c["body"]["snapshot_path"], files.state_path);
    EXPECT_EQ(c["body"]["mem_backend"]["backend_path"], files.memory_path);
    EXPECT_EQ(c["body"]["resume_vm"], false);
    EXPECT_EQ(c["body"]["clock_realtime"], true);
    EXPECT_EQ(c["body"]["vsock_override"]["uds_path"], work_->dir() + "/snap.agent.sock");
  }
  for (auto it = later.rbegin(); it != later.rend(); ++it) {
    if ((*it)["path"] != "/vm") continue;
    EXPECT_EQ((*it)["body"], (nlohmann::json{{"state", "Resumed"}}));
    break;
  }
}

INSTANTIATE_TEST_SUITE_P(Versions, FirecrackerBootTest, ::testing::Values("1.7.0", "1.10.1", "1.16.1"),
                         [](const auto& info) {
                           std::string name = "v" + info.param;
                           for (auto& c : name) c = c == '.' ? '_' : c;
                           return name;
                         });

// Through the jailer (stand-in), as the plugin runs Firecracker: the VMM runs as the VM's uid and gid with no
// capabilities and no_new_privs, as PID 1 of its own pid namespace, chrooted in its jail, in the cgroup the
// jailer made with the VM's limits; the guest still boots and talks over the jailed vsock socket; the jail
// is gone after the VM.
class JailedFirecrackerTest : public FirecrackerBootTest {
 protected:
  void SetUp() override {
    FirecrackerBootTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    NFC_REQUIRE_OR_SKIP(::geteuid() == 0, "the jailer needs root");
    auto jailer =
        WriteJailerStandIn(work_->dir(), NFC_FAKE_JAILER, NFC_FAKE_FIRECRACKER, NFC_FC_SPEC_DIR, record_);
    ASSERT_TRUE(jailer.ok()) << jailer.error().message();
    auto host = sandbox::CgroupHost::Detect();
    ASSERT_TRUE(host.ok()) << host.error().message();
    host_ = *host;
    JailerConfig j;
    j.binary = *jailer;
    j.chroot_base = work_->dir() + "/jail";
    j.uid = 265432;
    j.gid = 265433;
    j.parent_cgroup = "nfc-fc-boot-test-" + std::to_string(::getpid());
    j.limits = sandbox::LimitsForVm(256, 1, 500);
    options_.jailer = j;
  }

  void TearDown() override {
    if (!options_.jailer) return;
    const std::string& parent = options_.jailer->parent_cgroup;
    sandbox::VmCgroup cgroup = sandbox::VmCgroup::Existing(host_, "/" + parent, "jailed");
    for (const auto& dir : cgroup.dirs()) {
      ::rmdir(dir.c_str());
      ::rmdir(dir.substr(0, dir.rfind('/')).c_str());
    }
  }

  // "key: value" lines of /proc/<pid>/status.
  static std::string Status(pid_t pid, const std::string& key) {
    std::string text = ReadFile("/proc/" + std::to_string(pid) + "/status");
    size_t at = text.find("\n" + key + ":\t");
    if (at == std::string::npos) return "";
    at += key.size() + 3;
    return text.substr(at, text.find('\n', at) - at);
  }

  sandbox::CgroupHost host_;
};

TEST_P(JailedFirecrackerTest, RunsConfinedInItsJailAndLeavesNothing) {
  auto b = Boot("jailed", {"/bin/sh", "-c", "echo jailed; exit 5"});
  if (!b) return;
  VmRecord rec = b->vmm->Record();
  const JailerConfig& j = *options_.jailer;
  std::string root = rec.jail_dir + "/root";
  EXPECT_EQ(rec.jail_dir, work_->dir() + "/jail/firecracker-" + GetParam() + "/jailed");
  EXPECT_EQ(Status(rec.pid, "Uid"), "265432\t265432\t265432\t265432");
  EXPECT_EQ(Status(rec.pid, "Gid"), "265433\t265433\t265433\t265433");
  EXPECT_EQ(Status(rec.pid, "CapEff"), "0000000000000000");
  EXPECT_EQ(Status(rec.pid, "NoNewPrivs"), "1");
  EXPECT_EQ(Status(rec.pid, "NSpid"), std::to_string(rec.pid) + "\t1")
      << "not PID 1 of its own pid namespace";
  struct stat jail_root, its_root;
  ASSERT_EQ(::stat(root.c_str(), &jail_root), 0);
  ASSERT_EQ(::stat(("/proc/" + std::to_string(rec.pid) + "/root/").c_str(), &its_root), 0);
  EXPECT_TRUE(jail_root.st_dev == its_root.st_dev && jail_root.st_ino == its_root.st_ino)
      << "its root is not " << root;
  EXPECT_EQ(
      ReadFile("/proc/" + std::to_string(rec.pid) + "/cgroup").find("/" + j.parent_cgroup + "/jailed\n") ==
          std::string::npos,
      false)
      << ReadFile("/proc/" + std::to_string(rec.pid) + "/cgroup");
  sandbox::VmCgroup cgroup = sandbox::VmCgroup::Existing(host_, "/" + j.parent_cgroup, "jailed");
  for (const auto& dir : cgroup.dirs()) {
    for (const auto& [file, value] : sandbox::LimitFiles(host_.version, j.limits)) {
      if (host_.version == sandbox::CgroupVersion::kV1 &&
          dir.find("/" + file.substr(0, file.find('.')) + "/") == std::string::npos) {
        continue;
      }
      EXPECT_EQ(ReadFile(dir + "/" + file), value + "\n") << dir << "/" << file;
    }
  }
  auto w = CollectWorkload(*b->agent, kBootTimeout);
  ASSERT_TRUE(w.ok()) << w.error().message();
  EXPECT_EQ(w->exit.exit_code, 5);
  EXPECT_EQ(w->out, "jailed\n");
  auto exit = b->vmm->Wait(kBootTimeout);
  ASSERT_TRUE(exit.ok()) << exit.error().message();
  EXPECT_EQ(exit->kind, VmExit::Kind::kGuestStopped) << exit->detail;
  EXPECT_EQ(exit->wait_status, 0) << exit->detail << ": the reaped status is Firecracker's own";
  ExpectRequestsAccepted();
  for (const auto& c : Requests()) {
    if (c["path"] == "/boot-source") {
      EXPECT_EQ(c["body"]["kernel_image_path"], "/vmlinux") << c;
    }
    if (c["path"] == "/vsock") {
      EXPECT_EQ(c["body"]["uds_path"], "/v.sock") << c;
    }
  }
  EXPECT_NE(ReadFile(options_.vmm_log_path).find("Running Firecracker v" + GetParam()), std::string::npos);
  struct stat gone;
  EXPECT_NE(::stat(rec.jail_dir.c_str(), &gone), 0) << "the jail is left after the VM";
  for (const auto& dir : cgroup.dirs()) {
    // The v1 cpuset tree holds only VMs with reserved cores (resources { cores }); this one has none.
    if (j.limits.cpuset_cpus.empty() && dir.find("/cpuset/") != std::string::npos) {
      struct stat none;
      EXPECT_NE(::stat(dir.c_str(), &none), 0) << dir << ": a cpuset cgroup for a VM without reserved cores";
      continue;
    }
    EXPECT_EQ(::rmdir(dir.c_str()), 0) << dir << ": " << std::strerror(errno) << " (a process left in it?)";
  }
  DumpOnFailure("jailed");
}

INSTANTIATE_TEST_SUITE_P(Latest, JailedFirecrackerTest, ::testing::Values("1.16.1"),
                         [](const auto&) { return std::string("v1_16_1"); });

// --config-file with --no-api: Firecracker configures and boots from the file, with no API socket at all.
class FirecrackerConfigFileTest : public FirecrackerBootTest {};

TEST_P(FirecrackerConfigFileTest, ConfigFileBootsTheGuestWithoutAnApi) {
  guest::TaskSpec spec;
  spec.task_id = "vmm-test/config-file";
  spec.process.entrypoint = {"/bin/sh", "-c", "echo from the config file; exit 3"};
  spec.root.device = "/dev/vda";
  spec.scratch.device = "/dev/vdb";
  std::string initrd = work_->dir() + "/cfg.initrd";
  ASSERT_TRUE(guest::WriteTaskInitramfs(artifacts_.initramfs, spec, initrd).ok());
  std::string uds = work_->dir() + "/cfg.vsock";
  nlohmann::json cfg = {
      {"boot-source",
       {{"kernel_image_path", artifacts_.vmlinux},
        {"initrd_path", initrd},
        {"boot_args", "console=ttyS0 reboot=k panic=1 i8042.noaux i8042.nomux i8042.dumbkbd pci=off"}}},
      {"drives",
       {{{"drive_id", "root"},
         {"path_on_host", work_->root_image()},
         {"is_root_device", false},
         {"is_read_only", true}},
        {{"drive_id", "scratch"},
         {"path_on_host", work_->scratch_image()},
         {"is_root_device", false},
         {"is_read_only", false}}}},
      {"machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 256}}},
      {"vsock", {{"guest_cid", 3}, {"uds_path", uds}}},
      {"logger", {{"log_path", options_.vmm_log_path}, {"level", "Info"}}},
  };
  std::string cfg_path = work_->dir() + "/vm.json";
  std::ofstream(cfg_path) << cfg.dump();
  std::ofstream(options_.vmm_log_path).flush();  // before 1.14 the log file must exist
  SpawnOptions o;
  o.argv = {options_.vmm_binary, "--no-api", "--config-file=" + cfg_path, "--id", "cfg-test"};
  o.cwd = work_->dir();
  o.parent_death_signal = SIGKILL;
  auto fc = Spawn(o);
  ASSERT_TRUE(fc.ok()) << fc.error().message();
  auto fd = ConnectGuestEndpoint({GuestTransport::kFirecrackerVsock, uds, 3, guest::kDefaultVsockPort},
                                 guest::kDefaultVsockPort, kBootTimeout);
  if (!fd.ok()) ::kill(fc->pid, SIGKILL);
  ASSERT_TRUE(fd.ok()) << fd.error().message();
  auto agent = guest::AgentClient::Connect(std::move(fd).value(), {});
  ASSERT_TRUE(agent.ok()) << agent.error().message();
  auto w = CollectWorkload(**agent, kBootTimeout);
  ASSERT_TRUE(w.ok()) << w.error().message();
  EXPECT_EQ(w->exit.exit_code, 3);
  EXPECT_EQ(w->out, "from the config file\n");
  auto status = WaitForExit(fc->pid);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(*status, 0) << DescribeWaitStatus(*status);  // the guest reset: Firecracker exits 0
  EXPECT_FALSE(std::ifstream(work_->dir() + "/firecracker.socket").good());
  ExpectRequestsAccepted();
  EXPECT_NE(ReadFile(options_.vmm_log_path).find("[cfg-test:main] Running Firecracker v" + GetParam()),
            std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Latest, FirecrackerConfigFileTest, ::testing::Values("1.16.1"),
                         [](const auto&) { return std::string("v1_16_1"); });

// The stand-in's command line is Firecracker's: --version, argument errors (exit 153), --no-api's rule, and
// an invalid --config-file (exit 1, naming the field).
TEST(FirecrackerStandInTest, TakesFirecrackersCommandLine) {
  std::string spec = std::string(NFC_FC_SPEC_DIR) + "/firecracker-api-v1.10.1.yaml";
  char tmpl[] = "/tmp/fcargs-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  auto run = [&](std::vector<std::string> args, std::string* out) -> int {
    std::string out_path = dir + "/out";
    SpawnOptions o;
    o.argv = {NFC_FAKE_FIRECRACKER, "--spec", spec};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    UniqueFd fd(::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    o.stdout_fd = fd.get();
    o.stderr_fd = fd.get();
    o.cwd = dir;
    auto child = Spawn(o);
    if (!child.ok()) return -1;
    auto status = WaitForExit(child->pid);
    *out = ReadFile(out_path);
    return status.ok() && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
  };
  std::string out;
  EXPECT_EQ(run({"--version"}, &out), 0);
  EXPECT_EQ(out, "Firecracker v1.10.1\n");
  EXPECT_EQ(run({"--bogus"}, &out), 153);
  EXPECT_NE(out.find("unknown argument --bogus"), std::string::npos) << out;
  EXPECT_EQ(run({"--api-sock"}, &out), 153);
  EXPECT_EQ(run({"--no-api"}, &out), 153);
  EXPECT_NE(out.find("--no-api requires --config-file"), std::string::npos) << out;
  std::ofstream(dir + "/bad.json") << R"({"boot-source": {"kernel_image_path": "/nonexistent", "bogus": 1}})";
  EXPECT_EQ(run({"--no-api", "--config-file", "bad.json"}, &out), 1);
  EXPECT_NE(out.find("bogus"), std::string::npos) << out;
  std::ofstream(dir + "/nokernel.json") << R"({"machine-config": {"vcpu_count": 1, "mem_size_mib": 128}})";
  EXPECT_EQ(run({"--no-api", "--config-file", "nokernel.json"}, &out), 1);
  EXPECT_NE(out.find("boot-source"), std::string::npos) << out;
  std::system(("rm -rf " + dir).c_str());
}

}  // namespace
}  // namespace nfc::vmm::testing
