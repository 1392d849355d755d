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
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <nlohmann/json.hpp>

#include "guest_boot.h"
#include "require.h"

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
    auto fc = WriteFirecrackerStandIn(work_->dir(), NFC_FAKE_FIRECRACKER, NFC_FC_SPEC_DIR, GetParam(), record_);
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
      EXPECT_NE(b.error().message().find("Firecracker 1.7.0 announces virtio devices only as virtio_mmio.device="),
                std::string::npos)
          << b.error().message();
      for (const auto& c : Requests()) EXPECT_NE(c["path"], "/actions") << "the VM was started anyway: " << c;
      return std::nullopt;
    }
    EXPECT_TRUE(b.ok()) << b.error().message();
    if (!b.ok()) return std::nullopt;
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
    if (c["path"] == "/actions" && c["body"]["action_type"] == "SendCtrlAltDel") sent_cad = c["status"] == 204;
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

INSTANTIATE_TEST_SUITE_P(Versions, FirecrackerBootTest, ::testing::Values("1.7.0", "1.10.1", "1.16.1"),
                         [](const auto& info) {
                           std::string name = "v" + info.param;
                           for (auto& c : name) c = c == '.' ? '_' : c;
                           return name;
                         });

}  // namespace
}  // namespace nfc::vmm::testing
