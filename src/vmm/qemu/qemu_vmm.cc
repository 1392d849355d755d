#include "vmm/qemu/qemu_vmm.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "base/log.h"
#include "base/proc.h"
#include "base/process.h"
#include "vmm/backend_vmm.h"
#include "vmm/json_fields.h"
#include "vmm/qemu/qmp_client.h"
#include "vmm/vmm_process.h"

namespace nfc::vmm::qemu {
namespace {

// microvm without ioapic2 has 8 virtio-mmio transports (vmm.md 6). QEMU 7.2 accepts more devices without a
// word (measured: 10 virtio-blk devices start), so a guest would silently miss a volume.
constexpr size_t kMicrovmTransports = 8;

Status CheckTransportCount(const VmConfig& c) {
  size_t needed = c.drives.size() + c.nics.size() + (c.guest_channel ? 1 : 0);
  if (needed <= kMicrovmTransports) return Ok();
  return Error::InvalidArgument("vm config: QEMU microvm has " + std::to_string(kMicrovmTransports) +
                                " virtio devices and this VM needs " + std::to_string(needed) + " (" +
                                std::to_string(c.drives.size()) + " drives, " +
                                std::to_string(c.nics.size()) + " network interfaces, the guest channel)");
}

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kQmpWait = 10s;
// A snapshot or a restore moves the guest's whole RAM (256 MiB in ~0.5 s here, measured); a host under load
// may be far slower.
constexpr auto kMigrationWait = 300s;
constexpr auto kMigrationPoll = 5ms;
// QEMU throttles migration to 32 MiB/s by default; a snapshot of a paused VM has no reason to wait.
constexpr uint64_t kMigrationBandwidth = uint64_t{64} << 30;
constexpr auto kStatusPoll = 500ms;  // how often Wait() asks QMP for the run state
// QMP answers from QEMU's main loop, which TCG's vCPU threads do not block: half a minute of silence is a
// stopped or hung process, not a busy guest.
constexpr const char* kDefaultBinary = "qemu-system-x86_64";

std::string JoinArgs(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) s += (s.empty() ? "" : " ") + a;
  return s;
}

class QemuVmm final : public BackendVmm {
 public:
  explicit QemuVmm(VmConfig config)
      : BackendVmm("QEMU", std::move(config), config.state_dir + "/qmp.sock",
                   config.vmm_log_path.empty() ? config.state_dir + "/qemu.stderr" : config.vmm_log_path) {}

  explicit QemuVmm(const VmRecord& record) : BackendVmm("QEMU", record) {}

  Status Adopt() {
    NFC_RETURN_IF_ERROR(AdoptProcess());
    std::lock_guard lock(mu_);
    return qmp_.Connect(control_socket_, 2s);
  }

  Result<VmExit> Wait(std::chrono::milliseconds timeout) override {
    auto deadline = Clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() < 0) left = 0ms;
      NFC_ASSIGN_OR_RETURN(std::optional<int> status,
                           process_.WaitExit(std::min<std::chrono::milliseconds>(left, kStatusPoll)));
      if (status) return Finish(*status);
      CheckRunState();
      if (Clock::now() >= deadline) return Error::Timeout(Subject() + " still running");
    }
  }

  Status RequestShutdown() override {
    std::lock_guard lock(mu_);
    if (process_.Exited()) return Error::FailedPrecondition(Subject() + " has ended");
    // Ctrl+Alt+Del on the i8042 we add: the same signal path as Firecracker's SendCtrlAltDel (nomad-init gets
    // SIGINT). Then the ACPI power button, for guests that handle KEY_POWER instead.
    auto cad = qmp_.Execute("send-key", {{"keys",
                                          {{{"type", "qcode"}, {"data", "ctrl"}},
                                           {{"type", "qcode"}, {"data", "alt"}},
                                           {{"type", "qcode"}, {"data", "delete"}}}}});
    if (!cad.ok()) return std::move(cad).error().Context(Subject() + ": graceful stop");
    auto pd = qmp_.Execute("system_powerdown");
    if (!pd.ok()) return std::move(pd).error().Context(Subject() + ": graceful stop");
    return Ok();
  }

  Status Kill() override {
    {
      std::lock_guard lock(mu_);
      killing_ = true;
    }
    // SIGKILL straight away: `quit` would be as final but can hang behind a stuck QMP; we report kKilled
    // anyway.
    return BackendVmm::Kill();
  }

 private:
  Status Launch() override {
    std::string binary = config_.vmm_binary.empty() ? kDefaultBinary : config_.vmm_binary;
    NFC_RETURN_IF_ERROR(CheckTransportCount(config_));
    CommandInputs in;
    in.qmp_socket = control_socket_;
    in.console = console_on();
    in.vhost_vsock = config_.guest_channel && VhostVsockAvailable();
    if (config_.allow_kvm && config_.kvm_usable) {
      in.kvm = *config_.kvm_usable;
    } else if (config_.allow_kvm) {
      KvmProbe probe = ProbeKvm(binary, config_.kernel_path);
      in.kvm = probe.usable;
      if (!probe.usable)
        log::Debug("KVM not usable, using TCG", {{"vm", config_.id}, {"reason", probe.reason}});
    }
    if (!in.kvm) in.tsc_khz = HostTscKhz();
    CommandLine cl = BuildCommandLine(config_, in);
    cl.argv[0] = binary;
    log::Debug("qemu command line", {{"vm", config_.id}, {"argv", JoinArgs(cl.argv)}});

    SpawnSpec spawn;
    spawn.argv = std::move(cl.argv);
    spawn.backend = Backend::kQemu;
    spawn.kvm = in.kvm;
    // QEMU does not remove its listening sockets on exit, and refuses to bind over them.
    spawn.stale_sockets = {control_socket_};
    if (config_.guest_channel) {
      GuestEndpoint e;
      e.transport = in.vhost_vsock ? GuestTransport::kAfVsock : GuestTransport::kVirtioSerial;
      e.socket_path = in.vhost_vsock ? "" : config_.guest_channel->socket_path;
      e.guest_cid = config_.guest_channel->guest_cid;
      e.port = config_.guest_channel->port;
      if (!in.vhost_vsock) spawn.stale_sockets.push_back(config_.guest_channel->socket_path);
      spawn.guest = e;
    }
    NFC_RETURN_IF_ERROR(SpawnVmm(std::move(spawn)));

    std::lock_guard lock(mu_);
    Status connected = qmp_.Connect(control_socket_, kQmpWait);
    if (!connected.ok()) {
      auto st = process_.WaitExit(200ms);
      std::string why = st.ok() && st->has_value() ? "; QEMU " + DescribeWaitStatus(**st) : "";
      return std::move(connected).error().Context("QEMU did not come up" + why + StderrSuffix());
    }
    SetRecordedVersion(qmp_.version());
    if (config_.restore_from)
      NFC_RETURN_IF_ERROR_CTX(LoadSnapshot(), "restore " + config_.restore_from->state_path);
    // QEMU was started with -S: the guest runs only now, after QMP is ready to watch it.
    auto cont = qmp_.Execute("cont");
    if (!cont.ok()) return std::move(cont).error();
    NFC_ASSIGN_OR_RETURN(auto status, qmp_.Execute("query-status"));
    if (StringMember(status, "status") != "running") {
      return Error::Internal("QEMU VM not running after cont: " + Show(status));
    }
    return Ok();
  }

  // The migration stream is handed over as a file descriptor (QMP getfd), never as a path or an exec: URI, so
  // a QEMU confined in an empty chroot without spawn rights (-sandbox spawn=deny) reads and writes it too.
  Status PassFd(const std::string& name, const UniqueFd& fd) {
    auto got = qmp_.ExecuteWithFd("getfd", {{"fdname", name}}, fd.get());
    return got.ok() ? Ok() : std::move(got).error();
  }

  // QEMU waits with -incoming defer: the stream goes in, then the VM sits paused (-S) until cont.
  Status LoadSnapshot() {
    UniqueFd in(::open(config_.restore_from->state_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) return Error::Errno("open " + config_.restore_from->state_path);
    NFC_RETURN_IF_ERROR(PassFd("nfc-restore", in));
    NFC_RETURN_IF_ERROR(Run("migrate-incoming", {{"uri", "fd:nfc-restore"}}));
    auto deadline = Clock::now() + kMigrationWait;
    for (;;) {
      // A stream QEMU cannot load makes it exit: the process ends and QMP goes with it.
      auto st = process_.WaitExit(0ms);
      if (st.ok() && st->has_value()) {
        return Error::DataLoss("QEMU exited while loading the snapshot: " + DescribeWaitStatus(**st) +
                               StderrSuffix());
      }
      NFC_ASSIGN_OR_RETURN(auto status, qmp_.Execute("query-status"));
      std::string s = StringMember(status, "status");
      if (s != "inmigrate") {
        if (s == "paused" || s == "prelaunch") return Ok();
        return Error::Internal("QEMU VM in state " + s + " after loading the snapshot" + StderrSuffix());
      }
      if (Clock::now() >= deadline) return Error::Timeout("snapshot not loaded within 300 s");
      std::this_thread::sleep_for(kMigrationPoll);
    }
  }

  Status Snapshot(const SnapshotFiles& files) override {
    std::lock_guard lock(mu_);
    NFC_RETURN_IF_ERROR_CTX(SaveSnapshot(files.state_path), Subject() + ": snapshot to " + files.state_path);
    return Ok();
  }

  // A QMP command whose answer is only success or failure.
  Status Run(const std::string& command, const nlohmann::json& arguments = nullptr) {
    auto r = qmp_.Execute(command, arguments);
    return r.ok() ? Ok() : std::move(r).error();
  }

  Status SaveSnapshot(const std::string& path) {
    if (process_.Exited()) return Error::FailedPrecondition("the VM has ended");
    UniqueFd out(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!out) return Error::Errno("open " + path);
    NFC_RETURN_IF_ERROR(Run("stop"));
    NFC_RETURN_IF_ERROR(Run("migrate-set-parameters", {{"max-bandwidth", kMigrationBandwidth}}));
    NFC_RETURN_IF_ERROR(PassFd("nfc-snapshot", out));
    NFC_RETURN_IF_ERROR(Run("migrate", {{"uri", "fd:nfc-snapshot"}}));
    NFC_RETURN_IF_ERROR(WaitMigrated());
    if (::fsync(out.get()) != 0) return Error::Errno("fsync " + path);
    return Ok();
  }

  Status WaitMigrated() {
    auto deadline = Clock::now() + kMigrationWait;
    for (;;) {
      NFC_ASSIGN_OR_RETURN(auto info, qmp_.Execute("query-migrate"));
      std::string s = StringMember(info, "status");
      if (s == "completed") return Ok();
      if (s == "failed" || s == "cancelled") {
        return Error::Internal("migration " + s + ": " + StringMember(info, "error-desc", "no reason given"));
      }
      if (Clock::now() >= deadline) return Error::Timeout("migration still " + s + " after 300 s");
      std::this_thread::sleep_for(kMigrationPoll);
    }
  }

  // Notices a VM that stopped without QEMU exiting (KVM internal error, emulation failure, I/O error): QEMU
  // would sit there forever (vmm.md 6.5), so it is killed and the reason kept for Finish().
  void CheckRunState() {
    std::lock_guard lock(mu_);
    if (!qmp_.connected() || killing_ || !unresponsive_.empty()) return;
    auto status = qmp_.Execute("query-status", nullptr, 2s);
    if (Silent(status.ok())) {
      unresponsive_ = KillUnresponsive("QEMU's QMP", status.error());
      killing_ = false;  // our kill, reported as the hang
    }
    if (!status.ok()) return;
    std::string s = StringMember(*status, "status");
    if (s == "internal-error" || s == "io-error" || s == "guest-panicked") {
      stop_reason_ = s;
      log::Warn("QEMU VM stopped without exiting; killing QEMU", {{"vm", config_.id}, {"status", s}});
      (void)process_.Signal(SIGKILL);
      killing_ = false;  // this kill is ours but reported as the internal error, not as a requested kill
    }
  }

  Result<VmExit> Finish(int status) {
    std::lock_guard lock(mu_);
    if (exit_) return *exit_;
    // The SHUTDOWN event (reason) is still readable after QEMU exited.
    qmp_.DrainEvents();
    for (const auto& ev : qmp_.TakeEvents()) {
      if (StringMember(ev, "event") == "SHUTDOWN") {
        shutdown_reason_ = StringMember(Member(ev, "data"), "reason");
      }
    }
    VmExit e;
    e.wait_status = status;
    if (!unresponsive_.empty()) {
      e.kind = VmExit::Kind::kUnresponsive;
      e.detail = unresponsive_;
    } else if (!stop_reason_.empty()) {
      e.kind = VmExit::Kind::kInternalError;
      e.detail = "VM stopped with status " + stop_reason_ + "; QEMU killed" + StderrSuffix();
    } else if (auto common = CommonExit(status)) {
      e = *common;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
               (shutdown_reason_.rfind("guest-", 0) == 0 || shutdown_reason_.empty())) {
      // guest-shutdown (ACPI S5), guest-reset (reboot with -no-reboot) or guest-panic. An empty reason means
      // the event was lost; a host signal would have printed "terminating on signal" to stderr.
      std::string tail = StderrSuffix();
      if (shutdown_reason_.empty() && tail.find("terminating on signal") != std::string::npos) {
        e.kind = VmExit::Kind::kVmmCrashed;
        e.detail = "QEMU terminated by a signal" + tail;
      } else {
        e.kind = VmExit::Kind::kGuestStopped;
        e.detail = shutdown_reason_.empty() ? "exit status 0" : shutdown_reason_;
      }
    } else {
      e.kind = VmExit::Kind::kVmmCrashed;
      e.detail = DescribeWaitStatus(status);
      if (!shutdown_reason_.empty()) e.detail += " (" + shutdown_reason_ + ")";
      e.detail += StderrSuffix();
    }
    qmp_.Close();
    AfterExit();
    exit_ = e;
    return e;
  }

  std::mutex mu_;  // guards qmp_ and the fields below
  bool killing_ = false;
  std::string stop_reason_;
  std::string unresponsive_;  // why we killed an unresponsive QEMU
  std::string shutdown_reason_;
  std::optional<VmExit> exit_;
  QmpClient qmp_;
};

}  // namespace

std::string QemuEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    out += c;
    if (c == ',') out += ',';
  }
  return out;
}

unsigned HostTscKhz() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("cpu MHz", 0) == 0) {
      auto colon = line.find(':');
      if (colon == std::string::npos) break;
      double mhz = std::atof(line.c_str() + colon + 1);
      if (mhz > 100) return static_cast<unsigned>(mhz * 1000);
      break;
    }
  }
  return 2400000;
}

bool VhostVsockAvailable() {
  int fd = ::open("/dev/vhost-vsock", O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

CommandLine BuildCommandLine(const VmConfig& c, const CommandInputs& in) {
  CommandLine cl;
  auto& a = cl.argv;
  a = {kDefaultBinary, "-name", c.id};
  // acpi=on: virtio-mmio devices are announced in the DSDT (the Debian kernel lacks
  // VIRTIO_MMIO_CMDLINE_DEVICES), and the GED turns a guest reset/poweroff into a QEMU exit.
  std::string machine =
      "microvm,acpi=on,x-option-roms=off,isa-serial=" + std::string(in.console ? "on" : "off");
  // Under TCG keep the legacy PIT/PIC/RTC: the kernel calibrates against them (dev-machines.md).
  if (in.kvm) machine += ",pit=off,pic=off,rtc=off";
  a.insert(a.end(), {"-M", machine});
  if (in.kvm) {
    a.insert(a.end(), {"-accel", "kvm", "-cpu", "host"});
  } else {
    a.insert(a.end(), {"-accel", "tcg", "-cpu", "max"});
  }
  a.insert(a.end(), {"-m", std::to_string(c.memory_mib), "-smp", std::to_string(c.vcpus), "-nodefaults",
                     "-no-user-config", "-display", "none", "-no-reboot", "-S", "-qmp",
                     "unix:" + QemuEscape(in.qmp_socket) + ",server=on,wait=off"});
  // The snapshot's stream comes later over QMP (migrate-incoming with a passed descriptor).
  if (c.restore_from) a.insert(a.end(), {"-incoming", "defer"});
  if (c.sandbox) {
    // Dropped before the guest runs (docs/security.md). elevateprivileges=deny is left out: QEMU 7.2 applies
    // the filter before its own -runas and dies of SIGSYS (measured); after -runas the real, effective and
    // saved ids are all the VM's, so no set*id call can raise anything. -sandbox also sets no_new_privs.
    a.insert(a.end(),
             {"-runas", std::to_string(c.sandbox->uid) + ":" + std::to_string(c.sandbox->gid), "-chroot",
              c.sandbox->jail_dir, "-sandbox", "on,obsolete=deny,spawn=deny,resourcecontrol=deny"});
  }
  // An i8042 so Ctrl+Alt+Del (QMP send-key) reaches the guest as on Firecracker.
  a.insert(a.end(), {"-device", "i8042"});
  if (in.console) {
    a.insert(a.end(), {"-chardev", "stdio,id=con0,signal=off", "-serial", "chardev:con0"});
  }
  a.insert(a.end(), {"-kernel", c.kernel_path});
  if (!c.initrd_path.empty()) a.insert(a.end(), {"-initrd", c.initrd_path});
  for (const auto& d : c.drives) {
    // auto-read-only=off: a writable drive is opened for writing at once. With -drive's default (on) an
    // incoming migration opens it read-only and reopens it by path on `cont`, which fails in the chroot.
    a.insert(a.end(), {"-drive",
                       "id=" + d.id + ",file=" + QemuEscape(d.path) +
                           ",format=raw,if=none,readonly=" + (d.read_only ? "on" : "off,auto-read-only=off"),
                       "-device", "virtio-blk-device,drive=" + d.id});
  }
  for (const auto& n : c.nics) {
    a.insert(a.end(), {"-netdev", "tap,id=" + n.id + ",ifname=" + n.tap + ",script=no,downscript=no"});
    std::string dev = "virtio-net-device,netdev=" + n.id;
    if (!n.mac.empty()) dev += ",mac=" + n.mac;
    if (n.mtu != 0) dev += ",host_mtu=" + std::to_string(n.mtu);
    a.insert(a.end(), {"-device", dev});
  }
  if (c.guest_channel) {
    if (in.vhost_vsock) {
      a.insert(a.end(),
               {"-device", "vhost-vsock-device,guest-cid=" + std::to_string(c.guest_channel->guest_cid)});
    } else {
      a.insert(a.end(),
               {"-device", "virtio-serial-device", "-chardev",
                "socket,id=agent,path=" + QemuEscape(c.guest_channel->socket_path) + ",server=on,wait=off",
                "-device", "virtserialport,chardev=agent,name=" + c.guest_channel->serial_port_name});
    }
  }
  auto& k = cl.kernel_args;
  if (!c.replace_kernel_args) {
    if (in.console) k.push_back("console=ttyS0");
    // reboot=a: the reset goes through microvm's GED, and -no-reboot turns it into an exit. The default order
    // took a BIOS path into qboot and hung in 7 of 29 boots (dev-machines.md). panic=1: a panic ends the VM.
    for (const char* s : {"reboot=a", "panic=1", "i8042.noaux", "i8042.nomux", "i8042.dumbkbd"})
      k.push_back(s);
    // Under TCG the guest hangs after "Marking TSC unstable" in most boots without an early TSC frequency.
    // tsc=reliable: TCG's guest TSC is the host's (constant, in sync); the clocksource watchdog compares it
    // with a jiffies clock that lags whenever the host is busy, marks it unstable and falls back to jiffies,
    // after which guest time (and nomad-init's boot timestamps) drift. Seen on the 2-core CI machines under
    // load.
    if (!in.kvm) {
      k.push_back("tsc_early_khz=" + std::to_string(in.tsc_khz ? in.tsc_khz : 2400000));
      k.push_back("tsc=reliable");
    }
  }
  k.insert(k.end(), c.kernel_args.begin(), c.kernel_args.end());
  a.insert(a.end(), {"-append", JoinArgs(k)});
  return cl;
}

KvmProbe ProbeKvm(const std::string& qemu_binary, const std::string& kernel) {
  static std::mutex mu;
  static std::map<std::pair<std::string, std::string>, KvmProbe> cache;
  std::lock_guard lock(mu);
  auto key = std::make_pair(qemu_binary, kernel);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  KvmProbe result;
  int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    result.reason = "/dev/kvm: " + std::string(strerror(errno));
    cache[key] = result;
    return result;
  }
  ::close(fd);
  // A whole boot: no initrd, so the kernel panics at the missing root, panic=-1 reboots at once, reboot=t
  // triple-faults, and -no-reboot ends QEMU with status 0. Anything else (abort at start, internal error,
  // a crawl past the deadline) means TCG.
  auto start = Clock::now();
  SpawnOptions o;
  o.argv = {qemu_binary,
            "-M",
            "microvm,acpi=on",
            "-accel",
            "kvm",
            "-cpu",
            "host",
            "-m",
            "128",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
            "-kernel",
            kernel,
            "-append",
            "panic=-1 reboot=t quiet"};
  VmmProcess p;
  Status s = p.Spawn(o);
  if (!s.ok()) {
    result.reason = s.error().message();
  } else {
    auto st = p.WaitExit(10s);
    if (!st.ok() || !st->has_value()) {
      (void)p.Signal(SIGKILL);
      (void)p.WaitExit(5s);
      result.reason = "probe guest did not finish booting within 10 s (KVM emulation too slow or stuck)";
    } else if (WIFEXITED(**st) && WEXITSTATUS(**st) == 0) {
      result.usable = true;
      result.reason =
          "probe guest booted and reset in " +
          std::to_string(
              std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count()) +
          " ms";
    } else {
      result.reason = "probe QEMU " + DescribeWaitStatus(**st);
    }
  }
  cache[key] = result;
  return result;
}

Result<std::unique_ptr<Vmm>> CreateQemuVmm(VmConfig config) {
  return std::unique_ptr<Vmm>(new QemuVmm(std::move(config)));
}

Result<std::unique_ptr<Vmm>> AttachQemuVmm(const VmRecord& record) {
  auto vmm = std::make_unique<QemuVmm>(record);
  NFC_RETURN_IF_ERROR_CTX(vmm->Adopt(), "attach QEMU VM " + record.id);
  return std::unique_ptr<Vmm>(std::move(vmm));
}

}  // namespace nfc::vmm::qemu
