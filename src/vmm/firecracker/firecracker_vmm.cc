#include "vmm/firecracker/firecracker_vmm.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <thread>

#include "base/log.h"
#include "base/process.h"
#include "vmm/backend_vmm.h"
#include "vmm/firecracker/api_client.h"
#include "vmm/firecracker/jail.h"
#include "vmm/json_fields.h"

namespace nfc::vmm::firecracker {
namespace {

using namespace std::chrono_literals;

constexpr auto kSocketWait = 10s;   // FC binds its socket in ~12 ms typically (SPECIFICATION.md)
constexpr auto kSocketPoll = 10ms;  // the go-sdk's poll interval
constexpr auto kWatchPoll = 500ms;  // how often Wait() asks the API whether Firecracker still answers
constexpr auto kWatchTimeout = 2s;  // ... and how long one answer may take
// PUT /snapshot/create and /snapshot/load answer once the guest memory is written or mapped: seconds for a
// few GiB on a slow disk.
constexpr auto kSnapshotTimeout = 300s;

// Before 1.14 Firecracker opens log and metrics paths without O_CREAT: they must exist.
Status EnsureFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return Error::Errno("create " + path);
  ::close(fd);
  return Ok();
}

std::string Join(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) {
    if (!s.empty()) s += ' ';
    s += a;
  }
  return s;
}

std::string FirecrackerBinary(const VmConfig& config) {
  return config.vmm_binary.empty() ? "firecracker" : config.vmm_binary;
}

std::optional<Jail> JailFor(const VmConfig& config) {
  if (!config.jailer) return std::nullopt;
  return Jail(*config.jailer, config.id, FirecrackerBinary(config));
}

class FirecrackerVmm final : public BackendVmm {
 public:
  explicit FirecrackerVmm(VmConfig config)
      : BackendVmm("Firecracker", std::move(config),
                   config.jailer ? JailFor(config)->HostPath(Jail::kApiSocket)
                                 : config.state_dir + "/firecracker.sock",
                   config.state_dir + "/firecracker.stderr"),
        jail_(JailFor(config_)),
        api_(control_socket_),
        watch_api_(control_socket_, kWatchTimeout),
        snapshot_api_(control_socket_, kSnapshotTimeout) {}

  // Attached to a VMM an earlier process started.
  explicit FirecrackerVmm(const VmRecord& record)
      : BackendVmm("Firecracker", record),
        api_(control_socket_),
        watch_api_(control_socket_, kWatchTimeout),
        snapshot_api_(control_socket_, kSnapshotTimeout) {}

  Status Adopt() { return AdoptProcess(); }

  // Waits in slices, asking the API between them whether Firecracker still answers (GET /, on a connection
  // of its own so a hung answer never holds the lock the other calls take).
  Result<VmExit> Wait(std::chrono::milliseconds timeout) override {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      NFC_ASSIGN_OR_RETURN(std::optional<int> status,
                           process_.WaitExit(std::clamp<std::chrono::milliseconds>(left, 0ms, kWatchPoll)));
      if (status) return Finish(*status);
      WatchApi();
      if (std::chrono::steady_clock::now() >= deadline) return Error::Timeout(Subject() + " still running");
    }
  }

  Status RequestShutdown() override {
    std::lock_guard lock(mu_);
    if (process_.Exited()) return Error::FailedPrecondition(Subject() + " has ended");
    // The guest's i8042 gets Ctrl+Alt+Del; nomad-init disabled CAD reboots, so the kernel sends it SIGINT.
    return api_.Put("/actions", {{"action_type", "SendCtrlAltDel"}});
  }

  // PATCH /vm Paused, then PUT /snapshot/create (vmm.md 1.4: the VM must be paused). In the jail Firecracker
  // can only write inside its root, so the files are made on the host first and hard-linked in (Jail::Place),
  // and Firecracker writes through the links.
  Status Snapshot(const SnapshotFiles& files) override {
    std::lock_guard lock(mu_);
    std::string what = Subject() + ": snapshot to " + files.state_path;
    if (process_.Exited()) return Error::FailedPrecondition(Subject() + " has ended");
    if (files.memory_path.empty()) return Error::InvalidArgument(what + ": memory_path is required");
    std::string state = files.state_path, memory = files.memory_path;
    if (jail_) {
      for (const auto& path : {files.state_path, files.memory_path}) {
        UniqueFd made(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        if (!made) return Error::Errno("create " + path).Context(what);
      }
      NFC_ASSIGN_OR_RETURN(state, jail_->Place(files.state_path, "snapshot.state", true));
      NFC_ASSIGN_OR_RETURN(memory, jail_->Place(files.memory_path, "snapshot.mem", true));
    }
    NFC_RETURN_IF_ERROR_CTX(api_.Patch("/vm", {{"state", "Paused"}}), what);
    NFC_RETURN_IF_ERROR_CTX(
        snapshot_api_.Put("/snapshot/create",
                          {{"snapshot_type", "Full"}, {"snapshot_path", state}, {"mem_file_path", memory}}),
        what);
    return Ok();
  }

 private:
  void WatchApi() {
    if (!unresponsive_.empty()) return;
    auto info = watch_api_.Get("/");
    if (Silent(info.ok())) unresponsive_ = KillUnresponsive("Firecracker's API", info.error());
  }

  Result<VmExit> Finish(int status) {
    std::lock_guard lock(exit_mu_);
    if (exit_) return *exit_;
    VmExit e;
    if (!unresponsive_.empty()) {
      e.wait_status = status;
      e.kind = VmExit::Kind::kUnresponsive;
      e.detail = unresponsive_;
    } else if (auto common = CommonExit(status)) {
      e = *common;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      // FC exits 0 only when the guest reset the CPU (reboot=k, triple fault): vmm.md 2.1.
      e.wait_status = status;
      e.kind = VmExit::Kind::kGuestStopped;
      e.detail = "guest reset (exit status 0)";
    } else {
      e.wait_status = status;
      e.kind = VmExit::Kind::kVmmCrashed;
      e.detail = DescribeWaitStatus(status);
      if (WIFEXITED(status)) e.detail += " (" + std::string(DescribeExitCode(WEXITSTATUS(status))) + ")";
      e.detail += StderrSuffix();
    }
    AfterExit();
    exit_ = e;
    return e;
  }

  Status Launch() override {
    // Without /serial (1.14+) FC writes the guest's serial console to its stdout.
    SpawnSpec spawn;
    spawn.backend = Backend::kFirecracker;
    spawn.kvm = true;
    if (config_.guest_channel) {
      std::string uds = jail_ ? jail_->HostPath(Jail::kVsockSocket) : config_.guest_channel->socket_path;
      spawn.guest = GuestEndpoint{GuestTransport::kFirecrackerVsock, uds, config_.guest_channel->guest_cid,
                                  config_.guest_channel->port};
    }
    if (jail_) {
      NFC_ASSIGN_OR_RETURN(spawn.argv, JailArgv());
      spawn.jail_dir = jail_->dir();
      NFC_RETURN_IF_ERROR(SpawnVmm(std::move(spawn)));
      NFC_RETURN_IF_ERROR(FollowJailedFirecracker());
    } else {
      spawn.argv = {FirecrackerBinary(config_), "--api-sock", control_socket_, "--id", config_.id};
      // Stale sockets make FC fail: the API socket at startup, the vsock uds_path at PUT /vsock
      // (vmm.md 1.1, 1.3).
      spawn.stale_sockets = {control_socket_};
      if (config_.guest_channel) spawn.stale_sockets.push_back(config_.guest_channel->socket_path);
      NFC_RETURN_IF_ERROR(SpawnVmm(std::move(spawn)));
    }

    std::lock_guard lock(mu_);
    NFC_RETURN_IF_ERROR(WaitForApi());
    if (config_.restore_from) {
      NFC_RETURN_IF_ERROR_CTX(LoadSnapshot(), "restore " + config_.restore_from->state_path);
      log::Debug("firecracker VM restored", {{"vm", config_.id}, {"pid", process_.pid()}});
      return Ok();
    }
    NFC_RETURN_IF_ERROR(Configure());
    NFC_RETURN_IF_ERROR(api_.Put("/actions", {{"action_type", "InstanceStart"}}));
    log::Debug("firecracker VM started",
               {{"vm", config_.id}, {"pid", process_.pid()}, {"version", version_.text}});
    return Ok();
  }

  // The chroot with everything Firecracker opens (vmm.md 4.3), and the jailer's command line. The paths the
  // API is given are rewritten to their jailed names.
  Result<std::vector<std::string>> JailArgv() {
    NFC_RETURN_IF_ERROR_CTX(jail_->Create(), "the Firecracker jail");
    NFC_ASSIGN_OR_RETURN(jailed_.kernel, jail_->Place(config_.kernel_path, "vmlinux", false));
    if (!config_.initrd_path.empty()) {
      NFC_ASSIGN_OR_RETURN(jailed_.initrd, jail_->Place(config_.initrd_path, "initrd", false));
    }
    for (const auto& d : config_.drives) {
      NFC_ASSIGN_OR_RETURN(std::string path, jail_->Place(d.path, d.id, !d.read_only));
      jailed_.drives.push_back(path);
    }
    if (!config_.vmm_log_path.empty()) {
      NFC_RETURN_IF_ERROR(EnsureFile(config_.vmm_log_path));
      NFC_ASSIGN_OR_RETURN(jailed_.log, jail_->Place(config_.vmm_log_path, "firecracker.log", true));
    }
    if (!config_.metrics_path.empty()) {
      NFC_RETURN_IF_ERROR(EnsureFile(config_.metrics_path));
      NFC_ASSIGN_OR_RETURN(jailed_.metrics, jail_->Place(config_.metrics_path, "metrics.json", true));
    }
    if (config_.restore_from) {
      NFC_ASSIGN_OR_RETURN(jailed_.state,
                           jail_->Place(config_.restore_from->state_path, "snapshot.state", false));
      NFC_ASSIGN_OR_RETURN(jailed_.memory,
                           jail_->Place(config_.restore_from->memory_path, "snapshot.mem", false));
    }
    for (const auto& n : config_.nics) NFC_RETURN_IF_ERROR(jail_->GrantTap(n.tap));
    // Firecracker is PID 1 of its pid namespace and the jailer exits: as a child subreaper we still reap it.
    if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return Error::Errno("prctl(PR_SET_CHILD_SUBREAPER)");
    return jail_->Argv({"--api-sock", Jail::kApiSocket});
  }

  // The jailer exits 0 once Firecracker runs in its new pid namespace; Firecracker's pid is in the pid file.
  Status FollowJailedFirecracker() {
    NFC_ASSIGN_OR_RETURN(std::optional<int> status, process_.WaitExit(kSocketWait));
    if (!status) return Error::Timeout("the jailer did not hand over to Firecracker within 10 s");
    if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
      return Error::Unavailable("the jailer failed: " + DescribeWaitStatus(*status) + StderrSuffix());
    }
    NFC_ASSIGN_OR_RETURN(pid_t pid, jail_->ReadPid());
    return FollowVmm(pid);
  }

  // The path Firecracker opens: the jailed name when it runs in the jail.
  const std::string& Jailed(const std::string& jailed, const std::string& host) const {
    return jail_ ? jailed : host;
  }

  // Polls until the API answers GET / (socket bound and serving), failing fast if FC exits.
  Status WaitForApi() {
    auto deadline = std::chrono::steady_clock::now() + kSocketWait;
    Error last = Error::Timeout("no attempt");
    while (std::chrono::steady_clock::now() < deadline) {
      auto st = process_.WaitExit(0ms);
      if (st.ok() && st->has_value()) {
        return Error::Unavailable("firecracker exited before its API came up: " + DescribeWaitStatus(**st) +
                                  StderrSuffix());
      }
      struct stat sb;
      if (::stat(control_socket_.c_str(), &sb) == 0) {
        auto info = api_.Get("/");
        if (info.ok()) {
          std::string v = StringMember(*info, "vmm_version");
          if (v.empty()) {
            // GET /version is the documented fallback for the version alone.
            NFC_ASSIGN_OR_RETURN(auto vj, api_.Get("/version"));
            v = StringMember(vj, "firecracker_version");
          }
          NFC_ASSIGN_OR_RETURN(version_, FirecrackerVersion::Parse(v));
          SetRecordedVersion(version_.text);
          return Ok();
        }
        last = std::move(info).error();
      }
      std::this_thread::sleep_for(kSocketPoll);
    }
    return Error::Timeout("Firecracker API socket " + control_socket_ + " not ready after " +
                          std::to_string(kSocketWait.count()) + " s: " + last.message());
  }

  // Before 1.8 Firecracker has no ACPI: virtio devices are announced only as virtio_mmio.device= kernel
  // arguments (vmm.md 5.1). A kernel that cannot parse them (Debian's cloud kernel: virtio_mmio is a module
  // without VIRTIO_MMIO_CMDLINE_DEVICES) boots without disks, so such a start is refused here, naming the
  // fix.
  Status CheckLegacyDeviceDiscovery() {
    static constexpr char kElfMagic[4] = {0x7f, 'E', 'L', 'F'};
    char magic[4] = {};
    UniqueFd fd(::open(config_.kernel_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd || ::read(fd.get(), magic, sizeof magic) != sizeof magic ||
        std::memcmp(magic, kElfMagic, sizeof magic) != 0) {
      return Ok();  // not a vmlinux at all: Firecracker's loader refuses it at InstanceStart, with its reason
    }
    NFC_ASSIGN_OR_RETURN(bool reads, KernelReadsMmioCmdline(config_.kernel_path));
    if (reads) return Ok();
    std::string why = "Firecracker " + version_.text +
                      " announces virtio devices only as virtio_mmio.device= kernel arguments (no ACPI "
                      "before 1.8), and the guest kernel " +
                      config_.kernel_path;
    return Error::FailedPrecondition(
        why +
        " cannot read them (it lacks CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=y built in), so the guest would find "
        "no disks: use the tuned guest kernel (scripts/guest-kernel --kernel tuned, docs/guest-kernel.md) or "
        "Firecracker 1.8 or later");
  }

  // The request sequence of vmm.md 1.4, with the version differences of vmm.md 1.7.
  Status Configure() {
    if (!version_.AtLeast(1, 8)) NFC_RETURN_IF_ERROR(CheckLegacyDeviceDiscovery());
    NFC_RETURN_IF_ERROR(ConfigureSinks());
    NFC_RETURN_IF_ERROR(ConfigureMachine());
    return ConfigureDevices();
  }

  // The snapshot's VM in a fresh Firecracker (only the logger and metrics may come before the load, vmm.md
  // 1.4): its TAPs and vsock socket repointed by the load itself, its drives by PATCH before the resume. A
  // failed load ends Firecracker (Start() then reports it and the caller boots cold).
  Status LoadSnapshot() {
    const SnapshotFiles& files = *config_.restore_from;
    if (files.memory_path.empty()) return Error::InvalidArgument("restore_from.memory_path is required");
    if (!config_.nics.empty() && !version_.AtLeast(1, 12)) {
      return Error::FailedPrecondition("Firecracker " + version_.text +
                                       " cannot repoint a snapshot's network interfaces (network_overrides "
                                       "came in 1.12)");
    }
    bool vsock_override = config_.guest_channel && version_.AtLeast(1, 16);
    if (config_.guest_channel && !vsock_override && !jail_) {
      return Error::FailedPrecondition("Firecracker " + version_.text +
                                       " cannot repoint a snapshot's vsock socket (vsock_override came in "
                                       "1.16); only a jailed VM, whose socket path is always " +
                                       std::string(Jail::kVsockSocket) + ", can be restored");
    }
    NFC_RETURN_IF_ERROR(ConfigureSinks());
    nlohmann::json load = {
        {"snapshot_path", Jailed(jailed_.state, files.state_path)},
        {"mem_backend",
         {{"backend_type", "File"}, {"backend_path", Jailed(jailed_.memory, files.memory_path)}}},
        {"resume_vm", false}};
    if (!config_.nics.empty()) {
      load["network_overrides"] = nlohmann::json::array();
      for (const auto& n : config_.nics)
        load["network_overrides"].push_back({{"iface_id", n.id}, {"host_dev_name", n.tap}});
    }
    if (vsock_override) {
      load["vsock_override"] = {
          {"uds_path", jail_ ? std::string(Jail::kVsockSocket) : config_.guest_channel->socket_path}};
    }
    // kvmclock then moves on by the wall-clock time the snapshot sat on disk, instead of resuming the
    // template's time (1.16+; older guests get their clock from the host over the control channel).
    if (version_.AtLeast(1, 16)) load["clock_realtime"] = true;
    NFC_RETURN_IF_ERROR(snapshot_api_.Put("/snapshot/load", load));
    for (size_t i = 0; i < config_.drives.size(); i++) {
      const Drive& d = config_.drives[i];
      NFC_RETURN_IF_ERROR(api_.Patch(
          "/drives/" + d.id, {{"drive_id", d.id}, {"path_on_host", jail_ ? jailed_.drives[i] : d.path}}));
    }
    return api_.Patch("/vm", {{"state", "Resumed"}});
  }

  Status ConfigureSinks() {
    if (!config_.vmm_log_path.empty()) {
      if (!jail_)
        NFC_RETURN_IF_ERROR(EnsureFile(config_.vmm_log_path));  // must exist before 1.14 (jail: made)
      NFC_RETURN_IF_ERROR(api_.Put("/logger", {{"log_path", Jailed(jailed_.log, config_.vmm_log_path)},
                                               {"level", "Info"},
                                               {"show_level", true},
                                               {"show_log_origin", false}}));
    }
    if (!config_.metrics_path.empty()) {
      if (!jail_) NFC_RETURN_IF_ERROR(EnsureFile(config_.metrics_path));
      NFC_RETURN_IF_ERROR(
          api_.Put("/metrics", {{"metrics_path", Jailed(jailed_.metrics, config_.metrics_path)}}));
    }
    return Ok();
  }

  Status ConfigureMachine() {
    NFC_RETURN_IF_ERROR(api_.Put("/machine-config", {{"vcpu_count", config_.vcpus},
                                                     {"mem_size_mib", config_.memory_mib},
                                                     {"smt", false},
                                                     {"track_dirty_pages", false}}));
    std::vector<std::string> args =
        config_.replace_kernel_args ? std::vector<std::string>{} : PlatformKernelArgs(config_);
    args.insert(args.end(), config_.kernel_args.begin(), config_.kernel_args.end());
    nlohmann::json boot = {{"kernel_image_path", Jailed(jailed_.kernel, config_.kernel_path)},
                           {"boot_args", Join(args)}};
    if (!config_.initrd_path.empty()) boot["initrd_path"] = Jailed(jailed_.initrd, config_.initrd_path);
    return api_.Put("/boot-source", boot);
  }

  Status ConfigureDevices() {
    for (size_t i = 0; i < config_.drives.size(); i++) {
      const Drive& d = config_.drives[i];
      // No drive is the root device: nomad-init mounts its root itself, so FC adds no root= argument.
      NFC_RETURN_IF_ERROR(api_.Put("/drives/" + d.id, {{"drive_id", d.id},
                                                       {"path_on_host", jail_ ? jailed_.drives[i] : d.path},
                                                       {"is_root_device", false},
                                                       {"is_read_only", d.read_only}}));
    }
    for (const auto& n : config_.nics) {
      nlohmann::json nic = {{"iface_id", n.id}, {"host_dev_name", n.tap}};
      if (!n.mac.empty()) nic["guest_mac"] = n.mac;
      // `mtu` exists from 1.16 on; older versions reject it as an unknown field (deny_unknown_fields).
      if (n.mtu != 0 && version_.AtLeast(1, 16)) nic["mtu"] = n.mtu;
      NFC_RETURN_IF_ERROR(api_.Put("/network-interfaces/" + n.id, nic));
    }
    if (config_.guest_channel) {
      std::string uds = jail_ ? std::string(Jail::kVsockSocket) : config_.guest_channel->socket_path;
      NFC_RETURN_IF_ERROR(
          api_.Put("/vsock", {{"guest_cid", config_.guest_channel->guest_cid}, {"uds_path", uds}}));
    }
    return Ok();
  }

  std::optional<Jail> jail_;  // set when Firecracker runs through its jailer
  struct {
    std::string kernel, initrd, log, metrics, state, memory;
    std::vector<std::string> drives;  // in config_.drives' order
  } jailed_;                          // the paths inside the jail
  std::mutex mu_;                     // serializes API calls
  ApiClient api_;
  ApiClient watch_api_;       // Wait()'s own connection: GET / to tell a hung Firecracker
  ApiClient snapshot_api_;    // the snapshot calls, which may take minutes: their own timeout
  std::string unresponsive_;  // set when Wait() killed it as hung: the reason
  FirecrackerVersion version_;

  std::mutex exit_mu_;
  std::optional<VmExit> exit_;
};

}  // namespace

std::vector<std::string> PlatformKernelArgs(const VmConfig& config) {
  std::vector<std::string> args;
  if (config.console.mode == ConsoleConfig::Mode::kFile) {
    args.push_back("console=ttyS0");
  } else {
    args.push_back("8250.nr_uarts=0");  // no UART at all: nothing for the guest to spend VM exits on
  }
  // reboot=k: FC ends on the i8042 reset write (vmm.md 2.1); panic=1: a panic becomes a reset, so FC exits.
  // i8042.noaux/nomux/dumbkbd skip probing FC's minimal controller. No i8042.nopnp: it broke SendCtrlAltDel
  // on ACPI guests before FC 1.12. pci=off: virtio is on MMIO (FC >= 1.13 adds it too; a duplicate is
  // harmless).
  for (const char* a : {"reboot=k", "panic=1", "i8042.noaux", "i8042.nomux", "i8042.dumbkbd", "pci=off"}) {
    args.push_back(a);
  }
  return args;
}

Result<bool> KernelReadsMmioCmdline(const std::string& kernel_path) {
  // A built-in module parameter's name is stored as "<module>.<param>" in the image (module_param_cb's
  // __param_str_*), so the string is there exactly when virtio_mmio's `device` parameter is built in.
  static constexpr std::string_view kParam = "virtio_mmio.device";
  UniqueFd fd(::open(kernel_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Error::Errno("open guest kernel " + kernel_path);
  std::string buf(size_t{1} << 20, '\0');
  size_t kept = 0;  // bytes carried over from the previous chunk, so a match across chunks is found
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data() + kept, buf.size() - kept);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::Errno("read guest kernel " + kernel_path);
    if (n == 0) return false;
    size_t have = kept + static_cast<size_t>(n);
    if (std::string_view(buf.data(), have).find(kParam) != std::string_view::npos) return true;
    kept = std::min(have, kParam.size() - 1);
    std::memmove(buf.data(), buf.data() + have - kept, kept);
  }
}

std::string_view DescribeExitCode(int code) {
  switch (code) {
    case 0:
      return "guest reset";
    case 1:
      return "generic error: bad configuration, socket bind failure or failed build";
    case 2:
      return "unexpected error";
    case 12:
      return "host out of memory";
    case 148:
      return "seccomp violation";
    case 149:
      return "SIGBUS";
    case 150:
      return "SIGSEGV";
    case 151:
      return "SIGXFSZ";
    case 152:
      return "bad configuration";
    case 153:
      return "command-line argument parsing error";
    case 154:
      return "SIGXCPU";
    case 155:
      return "SIGPIPE";
    case 156:
      return "SIGHUP";
    case 157:
      return "SIGILL";
    default:
      return "unknown Firecracker exit code";
  }
}

Result<std::unique_ptr<Vmm>> CreateFirecrackerVmm(VmConfig config) {
  return std::unique_ptr<Vmm>(new FirecrackerVmm(std::move(config)));
}

Result<std::unique_ptr<Vmm>> AttachFirecrackerVmm(const VmRecord& record) {
  auto vmm = std::make_unique<FirecrackerVmm>(record);
  NFC_RETURN_IF_ERROR_CTX(vmm->Adopt(), "attach Firecracker VM " + record.id);
  return std::unique_ptr<Vmm>(std::move(vmm));
}

}  // namespace nfc::vmm::firecracker
