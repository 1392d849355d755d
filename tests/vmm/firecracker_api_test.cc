// The Firecracker backend against fake-firecracker, once per API spec version (1.7.0 and 1.16.1): the whole
// configure -> start -> Ctrl+Alt+Del -> exit sequence with every recorded request re-checked against the
// spec, crash and kill reporting, fault messages surfaced verbatim, hybrid vsock, reattach, and proof that
// the fake is strict (malformed requests get Firecracker's 400s).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "api_spec.h"
#include "base/process.h"
#include "vmm/firecracker/api_client.h"
#include "vmm/vmm.h"

namespace nfc::vmm {
namespace {

using namespace std::chrono_literals;

// Set by CMake; the environment may override them (to run against another build of the fake).
std::string Env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v ? v : fallback;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

class FirecrackerApiTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    fake_ = Env("FAKE_FIRECRACKER", NFC_FAKE_FIRECRACKER);
    spec_path_ = Env("FC_SPEC_DIR", NFC_FC_SPEC_DIR) + "/firecracker-api-v" + GetParam() + ".yaml";
    ASSERT_FALSE(fake_.empty());
    ASSERT_TRUE(Exists(spec_path_)) << spec_path_;
    char tmpl[] = "/tmp/fcapi-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::ofstream(dir_ + "/vmlinux") << "not really a kernel";
    std::ofstream(dir_ + "/initrd") << "not really an initrd";
    std::ofstream(dir_ + "/root.ext4") << "ro";
    std::ofstream(dir_ + "/scratch.ext4") << "rw";
  }
  void TearDown() override {
    vmm_.reset();  // kills a VMM a failed test left running
    std::system(("rm -rf " + dir_).c_str());
  }

  // The backend runs `<binary> --api-sock X --id Y`; a wrapper adds the fake's own options.
  std::string Wrapper(const std::string& extra) {
    std::string path = dir_ + "/firecracker";
    std::ofstream f(path);
    f << "#!/bin/sh\nexec '" << fake_ << "' --spec '" << spec_path_ << "' --record '" << dir_
      << "/calls.jsonl' --guest-listen 1024 " << extra << " \"$@\"\n";
    f.close();
    ::chmod(path.c_str(), 0755);
    return path;
  }

  VmConfig Config(const std::string& extra = "--cad-exit 0") {
    VmConfig c;
    c.id = "fc-test";
    c.state_dir = dir_;
    c.vmm_binary = Wrapper(extra);
    c.kernel_path = dir_ + "/vmlinux";
    c.initrd_path = dir_ + "/initrd";
    c.kernel_args = {"nomad.task=1"};
    c.vcpus = 2;
    c.memory_mib = 256;
    c.drives = {{"root", dir_ + "/root.ext4", true}, {"scratch", dir_ + "/scratch.ext4", false}};
    c.nics = {{"eth0", "tapfc0", "06:00:ac:10:00:02", 1400}};
    c.guest_channel = GuestChannelConfig{dir_ + "/v.sock", 3, 1024};
    c.console = {ConsoleConfig::Mode::kFile, dir_ + "/console.log", 4096};
    c.vmm_log_path = dir_ + "/fc.log";
    c.metrics_path = dir_ + "/fc.metrics";
    c.kill_with_owner = true;
    return c;
  }

  std::vector<nlohmann::json> Calls() {
    std::vector<nlohmann::json> calls;
    std::ifstream f(dir_ + "/calls.jsonl");
    std::string line;
    while (std::getline(f, line)) calls.push_back(nlohmann::json::parse(line));
    return calls;
  }

  std::unique_ptr<Vmm> StartVm(VmConfig c) {
    auto v = CreateVmm(Backend::kFirecracker, std::move(c));
    EXPECT_TRUE(v.ok()) << v.error().message();
    if (!v.ok()) return nullptr;
    auto s = (*v)->Start();
    EXPECT_TRUE(s.ok()) << s.error().message();
    if (!s.ok()) return nullptr;
    return std::move(v).value();
  }

  std::string fake_, spec_path_, dir_;
  std::unique_ptr<Vmm> vmm_;
};

TEST_P(FirecrackerApiTest, ConfigureStartCtrlAltDelExit) {
  // Stale files where FC binds its sockets must not stop the start (vmm.md 1.1, 3.1).
  std::ofstream(dir_ + "/firecracker.sock") << "stale";
  std::ofstream(dir_ + "/v.sock") << "stale";
  vmm_ = StartVm(Config());
  ASSERT_TRUE(vmm_);
  VmRecord r = vmm_->Record();
  EXPECT_GT(r.pid, 0);
  EXPECT_EQ(r.vmm_version, GetParam());
  ASSERT_TRUE(r.guest.has_value());
  EXPECT_EQ(r.guest->transport, GuestTransport::kFirecrackerVsock);

  // Hybrid vsock: CONNECT 1024 -> OK, then a byte stream (the fake's guest service echoes).
  auto conn = vmm_->ConnectGuest(1024, 5s);
  ASSERT_TRUE(conn.ok()) << conn.error().message();
  ASSERT_EQ(::write(conn->get(), "ping", 4), 4);
  char buf[4];
  ASSERT_EQ(::read(conn->get(), buf, 4), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");
  auto refused = vmm_->ConnectGuest(4242, 400ms);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kTimeout);

  ASSERT_TRUE(vmm_->RequestShutdown().ok());
  auto exit = vmm_->Wait(10s);
  ASSERT_TRUE(exit.ok()) << exit.error().message();
  EXPECT_EQ(exit->kind, VmExit::Kind::kGuestStopped) << exit->detail;
  EXPECT_FALSE(Exists(dir_ + "/firecracker.sock")) << "API socket left behind";
  EXPECT_FALSE(Exists(dir_ + "/v.sock")) << "vsock socket left behind";

  // Every request was accepted and is valid against the spec, checked again here independently of the fake.
  auto spec = fakefc::ApiSpec::Load(spec_path_);
  ASSERT_TRUE(spec.ok());
  std::vector<std::string> sequence;
  for (const auto& call : Calls()) {
    std::string method = call["method"], path = call["path"];
    EXPECT_TRUE(call["status"] == 204 || call["status"] == 200) << call.dump();
    auto op = spec->Match(method, path);
    ASSERT_TRUE(op.has_value()) << method << " " << path;
    if (!call["body"].is_null()) {
      EXPECT_EQ(spec->ValidateBody(*op, call["body"]), "") << call.dump();
    }
    std::string step = method + " " + path;
    if (path == "/actions") step += " " + call["body"]["action_type"].get<std::string>();
    sequence.push_back(step);
    if (path == "/network-interfaces/eth0") {
      // mtu exists only from 1.16 on; older versions refuse unknown fields.
      EXPECT_EQ(call["body"].contains("mtu"), GetParam() == "1.16.1") << call.dump();
    }
    if (path == "/boot-source") {
      std::string args = call["body"]["boot_args"];
      EXPECT_NE(args.find("reboot=k"), std::string::npos) << args;
      EXPECT_NE(args.find("console=ttyS0"), std::string::npos) << args;
      EXPECT_EQ(args.substr(args.size() - 12), "nomad.task=1") << args;
      EXPECT_EQ(call["body"]["initrd_path"], dir_ + "/initrd");
    }
  }
  std::vector<std::string> want = {"GET /",
                                   "PUT /logger",
                                   "PUT /metrics",
                                   "PUT /machine-config",
                                   "PUT /boot-source",
                                   "PUT /drives/root",
                                   "PUT /drives/scratch",
                                   "PUT /network-interfaces/eth0",
                                   "PUT /vsock",
                                   "PUT /actions InstanceStart",
                                   "PUT /actions SendCtrlAltDel"};
  EXPECT_EQ(sequence, want);
}

TEST_P(FirecrackerApiTest, VmmExitingNonZeroIsACrashWithItsStatus) {
  vmm_ = StartVm(Config("--crash-after-start 100:2"));
  ASSERT_TRUE(vmm_);
  auto exit = vmm_->Wait(10s);
  ASSERT_TRUE(exit.ok()) << exit.error().message();
  EXPECT_EQ(exit->kind, VmExit::Kind::kVmmCrashed);
  EXPECT_NE(exit->detail.find("exit status 2"), std::string::npos) << exit->detail;
  EXPECT_NE(exit->detail.find("unexpected error"), std::string::npos) << exit->detail;
  // Asking again gives the same answer.
  auto again = vmm_->Wait(0ms);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->detail, exit->detail);
}

TEST_P(FirecrackerApiTest, VmmKilledBySomeoneElseIsACrashWithTheSignal) {
  vmm_ = StartVm(Config());
  ASSERT_TRUE(vmm_);
  ASSERT_EQ(::kill(vmm_->Record().pid, SIGKILL), 0);
  auto exit = vmm_->Wait(10s);
  ASSERT_TRUE(exit.ok()) << exit.error().message();
  EXPECT_EQ(exit->kind, VmExit::Kind::kVmmCrashed);
  EXPECT_NE(exit->detail.find("signal 9"), std::string::npos) << exit->detail;
}

TEST_P(FirecrackerApiTest, HardStopIsReportedAsKilled) {
  vmm_ = StartVm(Config());
  ASSERT_TRUE(vmm_);
  auto timeout = vmm_->Wait(100ms);
  ASSERT_FALSE(timeout.ok());
  EXPECT_EQ(timeout.error().code(), ErrorCode::kTimeout);
  ASSERT_TRUE(vmm_->Kill().ok());
  auto exit = vmm_->Wait(10s);
  ASSERT_TRUE(exit.ok());
  EXPECT_EQ(exit->kind, VmExit::Kind::kKilled) << exit->detail;
  EXPECT_TRUE(vmm_->Kill().ok()) << "Kill after the end must be harmless";
  EXPECT_FALSE(vmm_->RequestShutdown().ok());
}

TEST_P(FirecrackerApiTest, FaultMessageIsSurfacedVerbatimWithContext) {
  VmConfig c = Config();
  c.guest_channel->socket_path = dir_ + "/no-such-dir/v.sock";  // FC cannot bind it: PUT /vsock fails
  auto v = CreateVmm(Backend::kFirecracker, c);
  ASSERT_TRUE(v.ok());
  auto s = (*v)->Start();
  ASSERT_FALSE(s.ok());
  std::string fault;
  for (const auto& call : Calls()) {
    if (call["path"] == "/vsock") fault = call["fault_message"];
  }
  ASSERT_FALSE(fault.empty());
  const std::string& msg = s.error().message();
  EXPECT_NE(msg.find("start Firecracker VM fc-test"), std::string::npos) << msg;
  EXPECT_NE(msg.find("PUT /vsock: Firecracker answered 400: " + fault), std::string::npos) << msg;
  // A failed start leaves no VMM behind.
  ProcessIdentity id{(*v)->Record().pid, (*v)->Record().start_time};
  EXPECT_FALSE(id.IsAlive());
}

TEST_P(FirecrackerApiTest, ReattachFromTheRecord) {
  vmm_ = StartVm(Config());
  ASSERT_TRUE(vmm_);
  auto record = VmRecord::FromJson(vmm_->Record().ToJson());
  ASSERT_TRUE(record.ok());
  auto attached = AttachVmm(*record);
  ASSERT_TRUE(attached.ok()) << attached.error().message();
  auto conn = (*attached)->ConnectGuest(1024, 5s);
  EXPECT_TRUE(conn.ok());
  ASSERT_TRUE((*attached)->RequestShutdown().ok());
  auto theirs = (*attached)->Wait(10s);
  ASSERT_TRUE(theirs.ok()) << theirs.error().message();
  EXPECT_EQ(theirs->kind, VmExit::Kind::kUnknown);  // not its child: status unknown
  auto ours = vmm_->Wait(10s);
  ASSERT_TRUE(ours.ok());
  EXPECT_EQ(ours->kind, VmExit::Kind::kGuestStopped) << ours->detail;
}

// The fake must be strict enough that a malformed request fails: each of these gets Firecracker's 400.
TEST_P(FirecrackerApiTest, FakeRejectsMalformedRequests) {
  std::string sock = dir_ + "/api.sock";
  SpawnOptions o;
  o.argv = {fake_, "--api-sock", sock, "--spec", spec_path_};
  auto child = Spawn(o);
  ASSERT_TRUE(child.ok());
  firecracker::ApiClient api(sock);
  for (int i = 0; i < 200 && !Exists(sock); i++) std::this_thread::sleep_for(10ms);
  std::string k = dir_ + "/vmlinux";
  auto fault = [&](const char* method, const std::string& path, const std::string& body) {
    auto r = api.Send(method, path, body);
    EXPECT_TRUE(r.ok());
    if (!r.ok()) return std::string();
    EXPECT_EQ(r->status, 400) << method << " " << path << " " << body;
    return firecracker::FaultMessage(r->body);
  };
  auto ok = [&](const char* method, const std::string& path, const std::string& body) {
    auto r = api.Send(method, path, body);
    return r.ok() && r->status == 204;
  };
  EXPECT_NE(fault("PUT", "/boot-source", R"({"kernel_image_path":")" + k + R"(","bogus":1})")
                .find("unknown field `bogus`"),
            std::string::npos);
  EXPECT_NE(fault("PUT", "/machine-config", R"({"vcpu_count":2})").find("missing field `mem_size_mib`"),
            std::string::npos);
  EXPECT_NE(fault("PUT", "/machine-config", R"({"vcpu_count":"2","mem_size_mib":128})").find("invalid type"),
            std::string::npos);
  EXPECT_NE(fault("PUT", "/machine-config", R"({"vcpu_count":33,"mem_size_mib":128})").find("maximum"),
            std::string::npos);
  EXPECT_NE(fault("PUT", "/logger", R"({"level":"Loud"})").find("unknown variant `Loud`"), std::string::npos);
  EXPECT_NE(fault("PUT", "/drives/a-b", R"({"drive_id":"a-b","is_root_device":false})").find("Invalid ID"),
            std::string::npos);
  EXPECT_NE(fault("PUT", "/drives/x", R"({"drive_id":"y","is_root_device":false})").find("does not match"),
            std::string::npos);
  EXPECT_NE(fault("PUT", "/nope", "{}").find("Invalid request method and/or path: PUT /nope."),
            std::string::npos);
  EXPECT_NE(fault("DELETE", "/drives/x", "").find("Invalid request method and/or path"), std::string::npos);
  EXPECT_NE(fault("PUT", "/boot-source", "{not json").find("deserializing"), std::string::npos);
  EXPECT_NE(fault("PATCH", "/drives/x", R"({"drive_id":"x"})").find("before starting"), std::string::npos);
  EXPECT_NE(fault("PUT", "/actions", R"({"action_type":"InstanceStart"})").find("MissingKernelConfig"),
            std::string::npos);
  std::string nic = R"({"iface_id":"eth0","host_dev_name":"tap0","mtu":1400})";
  std::string serial = R"({"serial_out_path":")" + dir_ + R"(/serial.out"})";
  if (GetParam() == "1.7.0") {
    EXPECT_NE(fault("PUT", "/network-interfaces/eth0", nic).find("unknown field `mtu`"), std::string::npos);
    EXPECT_NE(fault("PUT", "/serial", serial).find("Invalid request method and/or path"), std::string::npos);
  } else {
    EXPECT_TRUE(ok("PUT", "/network-interfaces/eth0", nic));
    EXPECT_TRUE(ok("PUT", "/serial", serial));
  }
  EXPECT_TRUE(ok("PUT", "/boot-source", R"({"kernel_image_path":")" + k + R"("})"));
  EXPECT_TRUE(ok("PUT", "/actions", R"({"action_type":"InstanceStart"})"));
  EXPECT_NE(fault("PUT", "/boot-source", R"({"kernel_image_path":")" + k + R"("})").find("after starting"),
            std::string::npos);
  EXPECT_NE(fault("PUT", "/actions", R"({"action_type":"InstanceStart"})").find("after starting"),
            std::string::npos);
  auto info = api.Get("/");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ((*info)["state"], "Running");
  EXPECT_EQ((*info)["vmm_version"], GetParam());
  ::kill(child->pid, SIGKILL);
  (void)WaitForExit(child->pid);
}

INSTANTIATE_TEST_SUITE_P(SpecVersions, FirecrackerApiTest, ::testing::Values("1.7.0", "1.16.1"),
                         [](const auto& info) {
                           std::string n = "v" + info.param;
                           for (auto& c : n) c = c == '.' ? '_' : c;
                           return n;
                         });

}  // namespace
}  // namespace nfc::vmm
