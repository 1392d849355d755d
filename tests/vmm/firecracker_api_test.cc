// The Firecracker backend against fake-firecracker, once per API spec version (1.7.0, 1.10.1 and 1.16.1):
// the whole configure -> start -> Ctrl+Alt+Del -> exit sequence with every recorded request compared with
// bodies written out here, crash and kill reporting, fault messages surfaced verbatim, hybrid vsock,
// reattach, a non-ELF kernel failing the start, and proof that the fake is strict (malformed requests,
// nulls, integer widths, kernel images, missing log/metrics files, its own answers) so it cannot hide a
// break.
#include <elf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
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

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << bytes;
  ASSERT_TRUE(f.good()) << path;
}

constexpr uint64_t kKernelAt = 16 << 20;  // where vmlinux images usually load (CONFIG_PHYSICAL_START)

// What ElfKernel writes; each field can be made wrong for the fake's self-test.
struct ElfKernelOptions {
  bool pvh_note = true;
  uint8_t elf_class = ELFCLASS64;
  uint8_t data = ELFDATA2LSB;
  uint16_t machine = EM_X86_64;
  uint16_t phentsize = sizeof(Elf64_Phdr);
  uint64_t load_address = kKernelAt;
  bool mmio_cmdline =
      true;  // the built-in parameter name a kernel with VIRTIO_MMIO_CMDLINE_DEVICES=y carries
};

// A tiny vmlinux written byte by byte: an ELF64 header, a PT_LOAD segment holding a `hlt; jmp .-1` loop at
// load_address, and optionally the PT_NOTE with the PVH entry (XEN_ELFNOTE_PHYS32_ENTRY, name "Xen").
std::string ElfKernel(const ElfKernelOptions& o = {}) {
  constexpr size_t kCodeAt = 0x100, kNoteAt = 0x140;
  const unsigned char code[] = {0xf4, 0xeb, 0xfd};
  std::string image(kNoteAt + sizeof(Elf64_Nhdr) + 8, '\0');
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = o.elf_class;
  eh.e_ident[EI_DATA] = o.data;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_EXEC;
  eh.e_machine = o.machine;
  eh.e_version = EV_CURRENT;
  eh.e_entry = o.load_address;
  eh.e_phoff = sizeof eh;
  eh.e_ehsize = sizeof eh;
  eh.e_phentsize = o.phentsize;
  eh.e_phnum = o.pvh_note ? 2 : 1;
  Elf64_Phdr load{};
  load.p_type = PT_LOAD;
  load.p_flags = PF_R | PF_X;
  load.p_offset = kCodeAt;
  load.p_vaddr = load.p_paddr = o.load_address;
  load.p_filesz = load.p_memsz = sizeof code;
  load.p_align = 0x1000;
  Elf64_Phdr note{};
  note.p_type = PT_NOTE;
  note.p_offset = kNoteAt;
  note.p_filesz = sizeof(Elf64_Nhdr) + 8;
  note.p_align = 4;
  Elf64_Nhdr nh{4, 4, 18};
  uint32_t pvh_entry = static_cast<uint32_t>(o.load_address);
  std::memcpy(&image[0], &eh, sizeof eh);
  std::memcpy(&image[sizeof eh], &load, sizeof load);
  if (o.pvh_note) std::memcpy(&image[sizeof eh + sizeof load], &note, sizeof note);
  std::memcpy(&image[kCodeAt], code, sizeof code);
  std::memcpy(&image[kNoteAt], &nh, sizeof nh);
  std::memcpy(&image[kNoteAt + sizeof nh], "Xen", 4);
  std::memcpy(&image[kNoteAt + sizeof nh + 4], &pvh_entry, 4);
  if (o.mmio_cmdline) image += std::string("virtio_mmio.device\0", 19);
  return image;
}

// The start of a bzImage: "MZ", the boot sector signature and the "HdrS" setup header magic.
std::string BzImageHead() {
  std::string image(1024, '\0');
  image[0] = 'M';
  image[1] = 'Z';
  image[0x1fe] = 0x55;
  image[0x1ff] = static_cast<char>(0xaa);
  std::memcpy(&image[0x202], "HdrS", 4);
  return image;
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
    WriteFile(dir_ + "/vmlinux", ElfKernel());
    WriteFile(dir_ + "/initrd", "not really an initrd");
    WriteFile(dir_ + "/root.ext4", "ro");
    WriteFile(dir_ + "/scratch.ext4", "rw");
  }
  void TearDown() override {
    vmm_.reset();  // kills a VMM a failed test left running
    if (fake_pid_ > 0) {
      ::kill(fake_pid_, SIGKILL);
      (void)WaitForExit(fake_pid_);
    }
    // An answer outside the fake's own spec is a bug in the fake, whatever the test asserted.
    for (const auto& call : Calls()) {
      if (call.contains("fake_bug"))
        ADD_FAILURE() << "fake-firecracker answered outside its spec: " << call.dump();
    }
    if (HasFailure()) {
      std::ifstream err(dir_ + "/fake.stderr");
      std::string text((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
      if (!text.empty()) std::cerr << "fake-firecracker stderr:\n" << text;
    }
    std::system(("rm -rf " + dir_).c_str());
  }

  bool Before1_14() const { return GetParam() == "1.7.0" || GetParam() == "1.10.1"; }

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

  // The fake on its own, for the self-tests; killed in TearDown.
  void SpawnFake(std::vector<std::string> extra = {}) {
    std::string sock = dir_ + "/api.sock";
    SpawnOptions o;
    o.argv = {fake_, "--api-sock", sock, "--spec", spec_path_, "--record", dir_ + "/calls.jsonl"};
    o.argv.insert(o.argv.end(), extra.begin(), extra.end());
    int err_fd = ::open((dir_ + "/fake.stderr").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    ASSERT_GE(err_fd, 0);
    o.stderr_fd = err_fd;
    auto child = Spawn(o);
    ::close(err_fd);
    ASSERT_TRUE(child.ok()) << child.error().message();
    fake_pid_ = child->pid;
    api_ = std::make_unique<firecracker::ApiClient>(sock);
    // The socket file appears at bind(), before listen(): wait for an answer, as the backend does.
    bool serving = false;
    for (int i = 0; i < 500 && !serving; i++) {
      serving = Exists(sock) && api_->Send("GET", "/", "").ok();
      if (!serving) std::this_thread::sleep_for(10ms);
    }
    ASSERT_TRUE(serving) << "fake-firecracker did not answer on " << sock;
  }

  // Sends a request the fake must refuse with 400; returns the fault message.
  std::string Fault(const char* method, const std::string& path, const std::string& body) {
    auto r = api_->Send(method, path, body);
    EXPECT_TRUE(r.ok());
    if (!r.ok()) return std::string();
    EXPECT_EQ(r->status, 400) << method << " " << path << " " << body;
    return firecracker::FaultMessage(r->body);
  }
  // Sends a request the fake must accept with 204.
  bool Accepted(const char* method, const std::string& path, const std::string& body) {
    auto r = api_->Send(method, path, body);
    return r.ok() && r->status == 204;
  }
  std::string BootSource(const std::string& kernel) {
    return nlohmann::json{{"kernel_image_path", kernel}}.dump();
  }

  std::string fake_, spec_path_, dir_;
  std::unique_ptr<Vmm> vmm_;
  pid_t fake_pid_ = -1;
  std::unique_ptr<firecracker::ApiClient> api_;
};

#define EXPECT_HAS(haystack, needle)                                                         \
  do {                                                                                       \
    const std::string& h_ = (haystack);                                                      \
    EXPECT_NE(h_.find(needle), std::string::npos) << "\"" << h_ << "\" lacks: " << (needle); \
  } while (0)

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

  // Every request, compared with bodies written out here by hand: independent of the fake's spec validator
  // and of the backend's code, this is what a real Firecracker of this version must receive.
  nlohmann::json nic = {
      {"iface_id", "eth0"}, {"host_dev_name", "tapfc0"}, {"guest_mac", "06:00:ac:10:00:02"}};
  if (GetParam() == "1.16.1") nic["mtu"] = 1400;  // mtu exists only from 1.16 on; older versions refuse it
  struct Request {
    std::string method, path;
    nlohmann::json body;
  };
  std::vector<Request> want = {
      {"GET", "/", nullptr},
      {"PUT",
       "/logger",
       {{"log_path", dir_ + "/fc.log"}, {"level", "Info"}, {"show_level", true}, {"show_log_origin", false}}},
      {"PUT", "/metrics", {{"metrics_path", dir_ + "/fc.metrics"}}},
      {"PUT",
       "/machine-config",
       {{"vcpu_count", 2}, {"mem_size_mib", 256}, {"smt", false}, {"track_dirty_pages", false}}},
      {"PUT",
       "/boot-source",
       {{"kernel_image_path", dir_ + "/vmlinux"},
        {"boot_args",
         "console=ttyS0 reboot=k panic=1 i8042.noaux i8042.nomux i8042.dumbkbd pci=off nomad.task=1"},
        {"initrd_path", dir_ + "/initrd"}}},
      {"PUT",
       "/drives/root",
       {{"drive_id", "root"},
        {"path_on_host", dir_ + "/root.ext4"},
        {"is_root_device", false},
        {"is_read_only", true}}},
      {"PUT",
       "/drives/scratch",
       {{"drive_id", "scratch"},
        {"path_on_host", dir_ + "/scratch.ext4"},
        {"is_root_device", false},
        {"is_read_only", false}}},
      {"PUT", "/network-interfaces/eth0", nic},
      {"PUT", "/vsock", {{"guest_cid", 3}, {"uds_path", dir_ + "/v.sock"}}},
      {"PUT", "/actions", {{"action_type", "InstanceStart"}}},
      {"PUT", "/actions", {{"action_type", "SendCtrlAltDel"}}},
  };
  auto calls = Calls();
  ASSERT_EQ(calls.size(), want.size());
  for (size_t i = 0; i < want.size(); i++) {
    const auto& call = calls[i];
    EXPECT_TRUE(call["status"] == 204 || call["status"] == 200) << call.dump();
    EXPECT_EQ(call["method"], want[i].method) << call.dump();
    EXPECT_EQ(call["path"], want[i].path) << call.dump();
    EXPECT_EQ(call["body"], want[i].body) << call.dump();
    if (call["path"] == "/network-interfaces/eth0") {
      EXPECT_EQ(call["body"].contains("mtu"), GetParam() == "1.16.1") << call.dump();
    }
    if (call["path"] == "/boot-source") {
      std::string args = call["body"]["boot_args"];
      EXPECT_HAS(args, "reboot=k");
      EXPECT_HAS(args, "console=ttyS0");
      EXPECT_EQ(args.substr(args.size() - 12), "nomad.task=1") << args;
      EXPECT_EQ(call["body"]["initrd_path"], dir_ + "/initrd");
    }
  }
  // The fake read the generated vmlinux at InstanceStart: PVH note found, used only from 1.12 on.
  const auto& start = calls[9]["kernel"];
  EXPECT_EQ(start["format"], "elf64-x86_64") << start;
  EXPECT_EQ(start["pvh_entry"], kKernelAt) << start;
  EXPECT_EQ(start["boot_protocol"], GetParam() == "1.16.1" ? "pvh" : "linux-64bit") << start;
}

TEST_P(FirecrackerApiTest, NonElfKernelFailsTheStartWithTheLoadersReason) {
  // A bzImage boots on QEMU but not on Firecracker <= 1.16 (vmm.md 5.1): the start must fail, clearly.
  WriteFile(dir_ + "/bzImage", BzImageHead());
  VmConfig c = Config();
  c.kernel_path = dir_ + "/bzImage";
  auto v = CreateVmm(Backend::kFirecracker, c);
  ASSERT_TRUE(v.ok());
  auto s = (*v)->Start();
  ASSERT_FALSE(s.ok());
  const std::string& msg = s.error().message();
  EXPECT_HAS(msg, "start Firecracker VM fc-test");
  EXPECT_HAS(msg, "PUT /actions: Firecracker answered 400: Cannot load kernel");
  EXPECT_HAS(msg, "Invalid Elf magic number");
  ProcessIdentity id{(*v)->Record().pid, (*v)->Record().start_time};
  EXPECT_FALSE(id.IsAlive());
}

// Before 1.8 the guest finds its disks only through virtio_mmio.device= arguments: a kernel that cannot read
// them is refused before anything starts, naming the version and the fix; from 1.8 on ACPI announces them.
TEST_P(FirecrackerApiTest, KernelWithoutMmioCmdlineDevicesIsRefusedBefore18) {
  WriteFile(dir_ + "/acpi-only", ElfKernel({.mmio_cmdline = false}));
  VmConfig c = Config();
  c.kernel_path = dir_ + "/acpi-only";
  auto v = CreateVmm(Backend::kFirecracker, c);
  ASSERT_TRUE(v.ok());
  auto s = (*v)->Start();
  if (GetParam() != "1.7.0") {
    ASSERT_TRUE(s.ok()) << s.error().message();
    return;
  }
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_HAS(s.error().message(), "Firecracker 1.7.0 announces virtio devices only as virtio_mmio.device=");
  EXPECT_HAS(s.error().message(), c.kernel_path + " cannot read them");
  EXPECT_HAS(s.error().message(), "scripts/guest-kernel --kernel tuned");
  for (const auto& call : Calls()) EXPECT_NE(call["path"], "/actions") << call;
}

TEST_P(FirecrackerApiTest, BackendCreatesTheLogAndMetricsFilesFirecrackerOpens) {
  // Before 1.14 Firecracker refuses a log or metrics path that does not exist yet; the fake does too, so on
  // 1.7.0 and 1.10.1 this start fails if the backend stops creating either file.
  VmConfig c = Config();
  c.vmm_log_path = dir_ + "/new.log";
  c.metrics_path = dir_ + "/new.metrics";
  ASSERT_FALSE(Exists(c.vmm_log_path));
  ASSERT_FALSE(Exists(c.metrics_path));
  vmm_ = StartVm(c);
  ASSERT_TRUE(vmm_);
  EXPECT_TRUE(Exists(dir_ + "/new.log"));
  EXPECT_TRUE(Exists(dir_ + "/new.metrics"));
  int accepted = 0;
  for (const auto& call : Calls()) {
    if (call["path"] == "/logger" || call["path"] == "/metrics") accepted += call["status"] == 204;
  }
  EXPECT_EQ(accepted, 2);
}

TEST_P(FirecrackerApiTest, VmmExitingNonZeroIsACrashWithItsStatus) {
  vmm_ = StartVm(Config("--crash-after-start 100:2"));
  ASSERT_TRUE(vmm_);
  auto exit = vmm_->Wait(10s);
  ASSERT_TRUE(exit.ok()) << exit.error().message();
  EXPECT_EQ(exit->kind, VmExit::Kind::kVmmCrashed);
  EXPECT_HAS(exit->detail, "exit status 2");
  EXPECT_HAS(exit->detail, "unexpected error");
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
  EXPECT_HAS(exit->detail, "signal 9");
}

// A Firecracker that stops answering its API (SIGSTOP here; a hung VMM alike) is noticed by Wait(), killed
// and reported as unresponsive; one that answers keeps running however long Wait() waits.
TEST_P(FirecrackerApiTest, AStoppedFirecrackerIsKilledAsUnresponsive) {
  VmConfig c = Config();
  c.unresponsive_after = 2s;
  vmm_ = StartVm(std::move(c));
  ASSERT_TRUE(vmm_);
  auto alive = vmm_->Wait(3s);
  ASSERT_FALSE(alive.ok()) << "a Firecracker that answers must not be taken for hung";
  EXPECT_EQ(alive.error().code(), ErrorCode::kTimeout);
  ASSERT_EQ(::kill(vmm_->Record().pid, SIGSTOP), 0);
  auto start = std::chrono::steady_clock::now();
  auto exit = vmm_->Wait(20s);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(exit.ok()) << exit.error().message();
  EXPECT_EQ(exit->kind, VmExit::Kind::kUnresponsive) << exit->detail;
  EXPECT_HAS(exit->detail, "Firecracker's API did not answer for 2 s");
  EXPECT_HAS(exit->detail, "its process is stopped (SIGSTOP or a debugger); Firecracker killed");
  EXPECT_GE(took, 2s);
  EXPECT_LT(took, 8s) << "the watch polls every 500 ms with a 2 s answer timeout";
  EXPECT_EQ(vmm_->Wait(0ms)->detail, exit->detail);
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
  EXPECT_HAS(msg, "start Firecracker VM fc-test");
  EXPECT_HAS(msg, "PUT /vsock: Firecracker answered 400: " + fault);
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
  ASSERT_NO_FATAL_FAILURE(SpawnFake());
  std::string k = dir_ + "/vmlinux";
  EXPECT_HAS(Fault("PUT", "/boot-source", R"({"kernel_image_path":")" + k + R"(","bogus":1})"),
             "unknown field `bogus`");
  EXPECT_HAS(Fault("PUT", "/machine-config", R"({"vcpu_count":2})"), "missing field `mem_size_mib`");
  EXPECT_HAS(Fault("PUT", "/machine-config", R"({"vcpu_count":"2","mem_size_mib":128})"), "invalid type");
  EXPECT_HAS(Fault("PUT", "/machine-config", R"({"vcpu_count":33,"mem_size_mib":128})"), "maximum");
  EXPECT_HAS(Fault("PUT", "/logger", R"({"level":"Loud"})"), "unknown variant `Loud`");
  EXPECT_HAS(Fault("PUT", "/drives/a-b", R"({"drive_id":"a-b","is_root_device":false})"), "Invalid ID");
  EXPECT_HAS(Fault("PUT", "/drives/x", R"({"drive_id":"y","is_root_device":false})"), "does not match");
  EXPECT_HAS(Fault("PUT", "/nope", "{}"), "Invalid request method and/or path: PUT /nope.");
  EXPECT_HAS(Fault("DELETE", "/drives/x", ""), "Invalid request method and/or path");
  EXPECT_HAS(Fault("PUT", "/boot-source", "{not json"), "deserializing");
  EXPECT_HAS(Fault("PATCH", "/drives/x", R"({"drive_id":"x"})"), "before starting");
  EXPECT_HAS(Fault("PUT", "/actions", R"({"action_type":"InstanceStart"})"), "MissingKernelConfig");
  std::string nic = R"({"iface_id":"eth0","host_dev_name":"tap0","mtu":1400})";
  std::string serial = R"({"serial_out_path":")" + dir_ + R"(/serial.out"})";
  if (GetParam() == "1.16.1") {
    EXPECT_TRUE(Accepted("PUT", "/network-interfaces/eth0", nic));
    EXPECT_TRUE(Accepted("PUT", "/serial", serial));
  } else {
    EXPECT_HAS(Fault("PUT", "/network-interfaces/eth0", nic), "unknown field `mtu`");
    EXPECT_HAS(Fault("PUT", "/serial", serial), "Invalid request method and/or path");
  }
  EXPECT_TRUE(Accepted("PUT", "/boot-source", BootSource(k)));
  EXPECT_TRUE(Accepted("PUT", "/actions", R"({"action_type":"InstanceStart"})"));
  EXPECT_HAS(Fault("PUT", "/boot-source", BootSource(k)), "after starting");
  EXPECT_HAS(Fault("PUT", "/actions", R"({"action_type":"InstanceStart"})"), "after starting");
  auto info = api_->Get("/");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ((*info)["state"], "Running");
  EXPECT_EQ((*info)["vmm_version"], GetParam());
}

// serde takes null only for Option fields, i.e. the ones the spec does not require.
TEST_P(FirecrackerApiTest, FakeRefusesNullForRequiredFields) {
  ASSERT_NO_FATAL_FAILURE(SpawnFake());
  EXPECT_HAS(Fault("PUT", "/drives/x", R"({"drive_id":"x","is_root_device":null})"),
             "invalid type: null, expected a boolean at `is_root_device`");
  EXPECT_HAS(Fault("PUT", "/machine-config", R"({"vcpu_count":null,"mem_size_mib":128})"),
             "invalid type: null, expected u64 at `vcpu_count`");
  EXPECT_HAS(Fault("PUT", "/vsock", R"({"guest_cid":3,"uds_path":null})"), "invalid type: null");
  EXPECT_HAS(Fault("PUT", "/boot-source", "null"), "invalid type: null, expected struct");
  EXPECT_HAS(Fault("PUT", "/metrics", R"({"metrics_path":null})"), "invalid type: null");
  // Fields that are not required may be null (None).
  std::string k = dir_ + "/vmlinux";
  EXPECT_TRUE(Accepted("PUT", "/boot-source", R"({"kernel_image_path":")" + k + R"(","initrd_path":null})"));
  EXPECT_TRUE(Accepted("PUT", "/machine-config", R"({"vcpu_count":2,"mem_size_mib":128,"smt":null})"));
}

// Integers are unsigned Rust types of the format's width; bounds compare without wrapping.
TEST_P(FirecrackerApiTest, FakeChecksIntegerSignWidthAndRange) {
  ASSERT_NO_FATAL_FAILURE(SpawnFake());
  auto machine = [](const std::string& vcpus) {
    return R"({"vcpu_count":)" + vcpus + R"(,"mem_size_mib":128})";
  };
  // Above LLONG_MAX: must read as too big, not wrap around to a negative number below the minimum.
  EXPECT_HAS(Fault("PUT", "/machine-config", machine("9223372036854775808")), "above the maximum 32");
  EXPECT_HAS(Fault("PUT", "/machine-config", machine("18446744073709551615")), "above the maximum 32");
  EXPECT_HAS(Fault("PUT", "/machine-config", machine("18446744073709551616")),
             "invalid type: floating point");
  EXPECT_HAS(Fault("PUT", "/machine-config", machine("-1")), "invalid value: integer `-1`, expected u64");
  EXPECT_HAS(Fault("PUT", "/machine-config", machine("0")), "below the minimum 1");
  EXPECT_HAS(Fault("PUT", "/machine-config", machine("2.0")), "invalid type: floating point");
  EXPECT_HAS(Fault("PUT", "/vsock", R"({"guest_cid":2,"uds_path":"/tmp/x"})"), "below the minimum 3");
  EXPECT_TRUE(Accepted("PUT", "/machine-config", machine("32")));
  if (GetParam() == "1.16.1") {
    auto leaf = [](const std::string& flags) {
      return R"({"cpuid_modifiers":[{"leaf":"0x1","subleaf":"0x0","flags":)" + flags +
             R"(,"modifiers":[]}]})";
    };
    EXPECT_HAS(Fault("PUT", "/cpu-config", leaf("4294967296")), "expected u32 at `cpuid_modifiers[0].flags`");
    EXPECT_TRUE(Accepted("PUT", "/cpu-config", leaf("4294967295")));
    std::string nic = R"({"iface_id":"eth1","host_dev_name":"tap1","mtu":)";
    EXPECT_HAS(Fault("PUT", "/network-interfaces/eth1", nic + "67}"), "below the minimum 68");
    EXPECT_HAS(Fault("PUT", "/network-interfaces/eth1", nic + "65536}"), "above the maximum 65535");
  }
}

// Firecracker reads the kernel at InstanceStart with linux-loader's ELF loader; a failed start can be
// retried.
TEST_P(FirecrackerApiTest, FakeLoadsTheKernelAtInstanceStartLikeFirecracker) {
  ASSERT_NO_FATAL_FAILURE(SpawnFake());
  auto start_fails = [&](const std::string& image, const std::string& why) {
    std::string path = dir_ + "/candidate";
    WriteFile(path, image);
    EXPECT_TRUE(Accepted("PUT", "/boot-source", BootSource(path)));
    std::string fault = Fault("PUT", "/actions", R"({"action_type":"InstanceStart"})");
    EXPECT_HAS(fault, "Cannot load kernel due to invalid memory configuration or invalid kernel image");
    EXPECT_HAS(fault, why);
  };
  start_fails("not really a kernel", "Unable to read elf header");  // shorter than an ELF header
  start_fails(std::string(4096, 'k'), "Invalid Elf magic number");
  start_fails(BzImageHead(), "Invalid Elf magic number");
  start_fails(ElfKernel().substr(0, 40), "Unable to read elf header");
  start_fails(ElfKernel({.data = ELFDATA2MSB}), "big-endian");
  start_fails(ElfKernel({.elf_class = ELFCLASS32}), "not an ELF64 x86-64 image");
  start_fails(ElfKernel({.machine = EM_AARCH64}), "not an ELF64 x86-64 image");
  start_fails(ElfKernel({.phentsize = 32}), "Invalid program header size");
  start_fails(ElfKernel({.load_address = 0x80000}), "Invalid entry address");
  start_fails(ElfKernel({.load_address = 1ull << 30}), "Unable to read kernel image");  // beyond 128 MiB
  std::string truncated = ElfKernel();
  truncated.resize(0x100);  // program headers present, the segment's bytes missing
  start_fails(truncated, "Unable to read kernel image");

  WriteFile(dir_ + "/plain-vmlinux", ElfKernel({.pvh_note = false}));
  EXPECT_TRUE(Accepted("PUT", "/boot-source", BootSource(dir_ + "/plain-vmlinux")));
  EXPECT_TRUE(Accepted("PUT", "/actions", R"({"action_type":"InstanceStart"})"));
  auto calls = Calls();
  ASSERT_FALSE(calls.empty());
  EXPECT_TRUE(calls.back()["kernel"]["pvh_entry"].is_null()) << calls.back();
  EXPECT_EQ(calls.back()["kernel"]["boot_protocol"], "linux-64bit");
}

TEST_P(FirecrackerApiTest, FakeNeedsLogAndMetricsFilesBefore1_14) {
  ASSERT_NO_FATAL_FAILURE(SpawnFake());
  std::string log = dir_ + "/missing.log", metrics = dir_ + "/missing.metrics";
  std::string put_log = nlohmann::json{{"log_path", log}}.dump();
  std::string put_metrics = nlohmann::json{{"metrics_path", metrics}}.dump();
  if (Before1_14()) {
    EXPECT_HAS(Fault("PUT", "/logger", put_log), "No such file or directory");
    EXPECT_HAS(Fault("PUT", "/metrics", put_metrics), "No such file or directory");
    EXPECT_FALSE(Exists(log));
    EXPECT_FALSE(Exists(metrics));
    WriteFile(log, "");
    WriteFile(metrics, "");
  }
  EXPECT_TRUE(Accepted("PUT", "/logger", put_log));
  EXPECT_TRUE(Accepted("PUT", "/metrics", put_metrics));
  EXPECT_TRUE(Exists(log)) << "1.14+ creates the file";
  EXPECT_TRUE(Exists(metrics)) << "1.14+ creates the file";
  EXPECT_HAS(Fault("PUT", "/metrics", put_metrics), "Reinitialization of metrics not allowed.");
  EXPECT_HAS(Fault("PUT", "/logger", put_log), "Reinitialization of logger not allowed.");
}

// Every version's spec gives PATCH /machine-config the full MachineConfiguration body (vmm.md 1.3:
// before 1.11 Firecracker really needed mem_size_mib), so a partial update is refused; a full one replaces
// what was set.
TEST_P(FirecrackerApiTest, FakePatchesMachineConfigAsTheSpecSays) {
  ASSERT_NO_FATAL_FAILURE(SpawnFake());
  EXPECT_HAS(Fault("PATCH", "/machine-config", R"({"vcpu_count":2})"), "missing field `mem_size_mib`");
  EXPECT_TRUE(Accepted("PATCH", "/machine-config", R"({"vcpu_count":2,"mem_size_mib":256})"));
  auto mc = api_->Get("/machine-config");
  ASSERT_TRUE(mc.ok()) << mc.error().message();
  EXPECT_EQ((*mc)["vcpu_count"], 2);
  EXPECT_EQ((*mc)["mem_size_mib"], 256);
  EXPECT_EQ((*mc)["smt"], false) << "Firecracker's default shows where nothing was set";
}

// The fake's own answers are checked against the response schemas before they leave.
TEST_P(FirecrackerApiTest, FakeChecksItsOwnAnswersAgainstTheSpec) {
  ASSERT_NO_FATAL_FAILURE(SpawnFake());
  std::string k = dir_ + "/vmlinux";
  EXPECT_TRUE(Accepted("PUT", "/boot-source", BootSource(k)));
  EXPECT_TRUE(Accepted("PUT", "/drives/root",
                       nlohmann::json{{"drive_id", "root"},
                                      {"path_on_host", dir_ + "/root.ext4"},
                                      {"is_root_device", false},
                                      {"is_read_only", true}}
                           .dump()));
  EXPECT_TRUE(Accepted("PUT", "/network-interfaces/eth0", R"({"iface_id":"eth0","host_dev_name":"tap0"})"));
  for (const char* path : {"/", "/version", "/machine-config", "/vm/config"}) {
    auto r = api_->Get(path);
    EXPECT_TRUE(r.ok()) << path << ": " << r.error().message();
  }
  auto full = api_->Get("/vm/config");
  ASSERT_TRUE(full.ok());
  ASSERT_TRUE((*full)["drives"].is_array()) << *full;
  EXPECT_EQ((*full)["drives"][0]["drive_id"], "root");

  // A fake made to answer outside its spec is caught: a 500, and a fake_bug line the TearDown check finds.
  ::kill(fake_pid_, SIGKILL);
  (void)WaitForExit(fake_pid_);
  ::unlink((dir_ + "/api.sock").c_str());
  ASSERT_NO_FATAL_FAILURE(SpawnFake({"--answer-outside-spec"}));
  auto r = api_->Send("GET", "/", "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 500);
  EXPECT_HAS(firecracker::FaultMessage(r->body), "unknown field `bogus`");
  auto calls = Calls();
  ASSERT_FALSE(calls.empty());
  EXPECT_TRUE(calls.back().contains("fake_bug")) << calls.back();
  std::system(("rm -f " + dir_ + "/calls.jsonl").c_str());  // the bug was planted; TearDown must not count it
}

// ValidateResponse itself, for the shapes the fake does not produce on purpose.
TEST_P(FirecrackerApiTest, SpecValidatorRefusesAnswersOutsideTheSpec) {
  auto spec = fakefc::ApiSpec::Load(spec_path_);
  ASSERT_TRUE(spec.ok()) << spec.error().message();
  auto root = spec->Match("GET", "/");
  auto actions = spec->Match("PUT", "/actions");
  ASSERT_TRUE(root && actions);
  std::string good = R"({"app_name":"Firecracker","id":"a","state":"Running","vmm_version":"1"})";
  EXPECT_EQ(spec->ValidateResponse(*root, 200, good), "");
  EXPECT_HAS(spec->ValidateResponse(*root, 200, R"({"app_name":"Firecracker","id":"a","state":"Running"})"),
             "missing field `vmm_version`");
  EXPECT_HAS(
      spec->ValidateResponse(*root, 200, R"({"app_name":"F","id":"a","state":"Crashed","vmm_version":"1"})"),
      "unknown variant `Crashed`");
  EXPECT_HAS(spec->ValidateResponse(*root, 200, ""), "the answer has none");
  EXPECT_EQ(spec->ValidateResponse(*actions, 204, ""), "");
  EXPECT_HAS(spec->ValidateResponse(*actions, 204, "{}"), "the answer has one");
  EXPECT_EQ(spec->ValidateResponse(*actions, 400, R"({"fault_message":"x"})"), "");
  EXPECT_HAS(spec->ValidateResponse(*actions, 400, R"({"message":"x"})"), "unknown field `message`");
  EXPECT_HAS(spec->ValidateFault("not json"), "not JSON");
}

INSTANTIATE_TEST_SUITE_P(SpecVersions, FirecrackerApiTest, ::testing::Values("1.7.0", "1.10.1", "1.16.1"),
                         [](const auto& info) {
                           std::string n = "v" + info.param;
                           for (auto& c : n) c = c == '.' ? '_' : c;
                           return n;
                         });

// Specs the validator cannot apply faithfully are refused when loaded, never treated as "anything goes".
class ApiSpecLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fcspec-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  // A one-operation spec: PUT /x whose body is `body_schema`, with `definitions`.
  std::string Spec(const std::string& body_schema, const std::string& definitions = "{}") {
    std::string path = dir_ + "/spec" + std::to_string(n_++) + ".yaml";
    WriteFile(path,
              "swagger: \"2.0\"\ninfo: {version: 9.9.9}\npaths:\n  /x:\n    put:\n      parameters:\n"
              "        - {name: b, in: body, required: true" +
                  (body_schema.empty() ? "" : ", schema: " + body_schema) +
                  "}\n      responses: {204: {description: ok}}\ndefinitions: " + definitions + "\n");
    return path;
  }
  std::string LoadError(const std::string& path) {
    auto spec = fakefc::ApiSpec::Load(path);
    EXPECT_FALSE(spec.ok()) << path;
    return spec.ok() ? "" : spec.error().message();
  }
  std::string dir_;
  int n_ = 0;
};

TEST_F(ApiSpecLoadTest, RefusesSpecsItCannotEnforce) {
  EXPECT_TRUE(fakefc::ApiSpec::Load(Spec(R"({$ref: "#/definitions/A"})", "{A: {type: object}}")).ok());
  EXPECT_HAS(LoadError(Spec(R"({$ref: "#/definitions/Missing"})")),
             "unresolved $ref `#/definitions/Missing`");
  EXPECT_HAS(LoadError(Spec(R"({$ref: "#/parameters/A"})")), "unresolved $ref");
  EXPECT_HAS(LoadError(Spec("")), "body parameter without a schema");
  EXPECT_HAS(LoadError(Spec("{type: uint}")), "unknown type `uint`");
  EXPECT_HAS(LoadError(Spec("{type: object, properties: {a: {type: tuple}}}")), "unknown type `tuple`");
  EXPECT_HAS(LoadError(Spec("{type: string, pattern: \"^a$\"}")), "unsupported keyword `pattern`");
  EXPECT_HAS(LoadError(Spec("{type: object, required: [a], properties: {b: {type: string}}}")),
             "required `a` is no property");
  EXPECT_HAS(LoadError(Spec("{type: integer, format: int8}")), "unknown integer format `int8`");
  EXPECT_HAS(LoadError(Spec("{type: integer, minimum: 1.5}")), "minimum `1.5` does not fit type integer");
  EXPECT_HAS(LoadError(Spec("{type: array}")), "array needs exactly its items");
}

TEST_F(ApiSpecLoadTest, FakeFirecrackerWillNotServeABrokenSpec) {
  std::string spec = Spec(R"({$ref: "#/definitions/Missing"})");
  std::string err_path = dir_ + "/stderr";
  int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(err_fd, 0);
  SpawnOptions o;
  o.argv = {Env("FAKE_FIRECRACKER", NFC_FAKE_FIRECRACKER), "--api-sock", dir_ + "/api.sock", "--spec", spec};
  o.stderr_fd = err_fd;
  auto child = Spawn(o);
  ::close(err_fd);
  ASSERT_TRUE(child.ok());
  auto status = WaitForExit(child->pid);
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1) << *status;
  std::ifstream f(err_path);
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_HAS(text, "unresolved $ref");
}

// A request checked against a schema the spec cannot resolve is an error with a clear message, not "valid".
TEST_F(ApiSpecLoadTest, BrokenSchemaAtRequestTimeIsAnError) {
  auto spec = fakefc::ApiSpec::Load(Spec(R"({$ref: "#/definitions/A"})", "{A: {type: object}}"));
  ASSERT_TRUE(spec.ok()) << spec.error().message();
  fakefc::ApiOperation op;
  op.has_body = true;
  op.body_schema = YAML::Load(R"({$ref: "#/definitions/Gone"})");
  EXPECT_HAS(spec->ValidateBody(op, nlohmann::json::object()),
             "spec error: unresolved $ref `#/definitions/Gone`");
  op.body_schema = YAML::Node();
  EXPECT_HAS(spec->ValidateBody(op, nlohmann::json::object()), "spec error: no schema");
  op.body_schema = YAML::Load("{type: tuple}");
  EXPECT_HAS(spec->ValidateBody(op, nlohmann::json::object()), "spec error: unknown type `tuple`");
}

TEST_F(ApiSpecLoadTest, NumberBoundsAreEnforced) {
  auto spec = fakefc::ApiSpec::Load(
      Spec("{type: object, properties: {r: {type: number, minimum: 0.5, maximum: 2}}}"));
  ASSERT_TRUE(spec.ok()) << spec.error().message();
  auto op = spec->Match("PUT", "/x");
  ASSERT_TRUE(op);
  EXPECT_EQ(spec->ValidateBody(*op, {{"r", 1.5}}), "");
  EXPECT_EQ(spec->ValidateBody(*op, {{"r", 2}}), "");
  EXPECT_HAS(spec->ValidateBody(*op, {{"r", 0.25}}), "below the minimum 0.5");
  EXPECT_HAS(spec->ValidateBody(*op, {{"r", 3}}), "above the maximum 2");
  EXPECT_HAS(spec->ValidateBody(*op, {{"r", "1"}}), "invalid type: string \"1\", expected f64");
}

}  // namespace
}  // namespace nfc::vmm
