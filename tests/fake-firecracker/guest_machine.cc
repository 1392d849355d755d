#include "guest_machine.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <thread>

#include "base/process.h"
#include "base/unix_socket.h"
#include "vmm/qemu/qemu_vmm.h"

namespace nfc::fakefc {
namespace {

using namespace std::chrono_literals;
using vmm::qemu::QemuEscape;

// Firecracker's command line when boot_args is absent (vmm.md 5.2, 1.10.1).
constexpr const char* kDefaultBootArgs =
    "reboot=k panic=1 pci=off nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd";

std::string Str(const nlohmann::json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

uint64_t Num(const nlohmann::json& j, const char* key, uint64_t fallback) {
  return j.is_object() && j.contains(key) && j[key].is_number_unsigned() ? j[key].get<uint64_t>() : fallback;
}

bool Flag(const nlohmann::json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_boolean() && j[key].get<bool>();
}

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, 1000);
      continue;
    }
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Copies both ways until either side ends, then closes both: one vsock connection's life.
void Relay(int host, int guest) {
  pollfd fds[2] = {{host, POLLIN, 0}, {guest, POLLIN, 0}};
  char buf[65536];
  for (;;) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    bool done = false;
    for (int i = 0; i < 2 && !done; i++) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      done = n <= 0 || !WriteAll(fds[1 - i].fd, buf, static_cast<size_t>(n));
    }
    if (done) break;
  }
  ::close(host);
  ::close(guest);
}

}  // namespace

// What the QMP reader thread shares with the machine and the relays.
struct GuestMachine::State {
  std::mutex mu;
  std::condition_variable changed;
  UniqueFd qmp;
  std::map<std::string, bool> port_open;  // virtserialport id -> the guest holds it open
  std::string shutdown_reason;            // of QEMU's SHUTDOWN event
  std::string migration;                  // the last MIGRATION event's status
  bool qmp_closed = false;

  void Send(const nlohmann::json& command) {
    std::string line = command.dump() + "\n";
    std::lock_guard lock(mu);
    if (qmp) WriteAll(qmp.get(), line.data(), line.size());
  }

  void OnLine(const std::string& line) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("event")) return;
    std::lock_guard lock(mu);
    const nlohmann::json& data = j.contains("data") ? j["data"] : nlohmann::json::object();
    if (j["event"] == "VSERPORT_CHANGE") port_open[Str(data, "id")] = Flag(data, "open");
    if (j["event"] == "SHUTDOWN") shutdown_reason = Str(data, "reason");
    if (j["event"] == "MIGRATION") migration = Str(data, "status");
    changed.notify_all();
  }

  // Reads events until QEMU closes QMP (it exits).
  void ReadEvents() {
    std::string in;
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(qmp.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      in.append(buf, static_cast<size_t>(n));
      for (size_t nl; (nl = in.find('\n')) != std::string::npos; in.erase(0, nl + 1))
        OnLine(in.substr(0, nl));
    }
    std::lock_guard lock(mu);
    qmp_closed = true;
    changed.notify_all();
  }
};

namespace {

std::string PortId(uint32_t port) {
  return "vsock" + std::to_string(port);
}

std::vector<std::string> QemuArgv(const MachineOptions& o, const nlohmann::json& vm) {
  const nlohmann::json& mc = vm.value("machine-config", nlohmann::json::object());
  const nlohmann::json& boot = vm.value("boot-source", nlohmann::json::object());
  std::vector<std::string> a = {o.qemu, "-name", o.id};
  a.insert(
      a.end(),
      {"-M",          std::string("microvm,x-option-roms=off,isa-serial=on,acpi=") + (o.acpi ? "on" : "off"),
       "-accel",      "tcg",
       "-cpu",        "max",
       "-m",          std::to_string(Num(mc, "mem_size_mib", 128)),
       "-smp",        std::to_string(Num(mc, "vcpu_count", 1)),
       "-nodefaults", "-no-user-config",
       "-display",    "none",
       "-no-reboot",  "-S",
       "-qmp",        "unix:" + QemuEscape(o.work_dir + "/qmp.sock") + ",server=on,wait=off",
       "-device",     "i8042",
       "-chardev",    "stdio,id=con0,signal=off",
       "-serial",     "chardev:con0",
       "-kernel",     Str(boot, "kernel_image_path")});
  if (!Str(boot, "initrd_path").empty()) a.insert(a.end(), {"-initrd", Str(boot, "initrd_path")});
  std::string args =
      boot.contains("boot_args") && boot["boot_args"].is_string() ? Str(boot, "boot_args") : kDefaultBootArgs;
  // Firecracker attaches the root device first (it is /dev/vda) and names it on the command line.
  std::vector<nlohmann::json> drives;
  for (const auto& d : vm.value("drives", nlohmann::json::array())) {
    if (Flag(d, "is_root_device")) {
      drives.insert(drives.begin(), d);
      args += std::string(" root=/dev/vda ") + (Flag(d, "is_read_only") ? "ro" : "rw");
    } else {
      drives.push_back(d);
    }
  }
  for (const auto& d : drives) {
    std::string id = Str(d, "drive_id");
    a.insert(a.end(), {"-drive",
                       "id=" + id + ",file=" + QemuEscape(Str(d, "path_on_host")) +
                           ",format=raw,if=none,readonly=" + (Flag(d, "is_read_only") ? "on" : "off"),
                       "-device", "virtio-blk-device,drive=" + id});
  }
  for (const auto& n : vm.value("network-interfaces", nlohmann::json::array())) {
    std::string id = Str(n, "iface_id");
    a.insert(a.end(),
             {"-netdev", "tap,id=" + id + ",ifname=" + Str(n, "host_dev_name") + ",script=no,downscript=no"});
    std::string dev = "virtio-net-device,netdev=" + id;
    if (!Str(n, "guest_mac").empty()) dev += ",mac=" + Str(n, "guest_mac");
    if (Num(n, "mtu", 0) != 0) dev += ",host_mtu=" + std::to_string(Num(n, "mtu", 0));
    a.insert(a.end(), {"-device", dev});
  }
  if (vm.contains("vsock") && !o.vsock_relays.empty()) {
    a.insert(a.end(), {"-device", "virtio-serial-device"});
    for (const auto& [port, name] : o.vsock_relays) {
      std::string id = PortId(port);
      a.insert(a.end(), {"-chardev",
                         "socket,id=" + id + ",path=" + QemuEscape(o.work_dir + "/" + id + ".sock") +
                             ",server=on,wait=off",
                         "-device", "virtserialport,id=" + id + ",chardev=" + id + ",name=" + name});
    }
  }
  // Not Firecracker's: under TCG the guest needs an early TSC frequency and a trusted TSC (dev-machines.md);
  // KVM guests on Firecracker calibrate it themselves.
  args += " tsc_early_khz=" + std::to_string(vmm::qemu::HostTscKhz()) + " tsc=reliable";
  a.insert(a.end(), {"-append", args});
  return a;
}

// A path inside exec:'s shell command: single-quoted, so only a quote itself cannot be carried.
Result<std::string> ShellQuoted(const std::string& path) {
  if (path.find('\'') != std::string::npos) return Error::InvalidArgument("a quote in " + path);
  return "'" + path + "'";
}

}  // namespace

Result<std::unique_ptr<GuestMachine>> GuestMachine::Boot(const MachineOptions& options,
                                                         const nlohmann::json& vm_config) {
  return Start(options, QemuArgv(options, vm_config));
}

// Firecracker's load is synchronous: the VM is whole when PUT /snapshot/load answers. So QEMU waits
// (-incoming defer) until the stream is in. The stream says the VM was paused, which outranks the cont
// Start() sent while it waited: it is sent again once the load is done.
Result<std::unique_ptr<GuestMachine>> GuestMachine::Restore(const MachineOptions& options,
                                                            const nlohmann::json& vm_config,
                                                            const std::string& memory_path,
                                                            const std::map<std::string, bool>& open_ports) {
  std::vector<std::string> argv = QemuArgv(options, vm_config);
  NFC_ASSIGN_OR_RETURN(std::string quoted, ShellQuoted(memory_path));
  argv.insert(argv.end(), {"-incoming", "defer"});
  NFC_ASSIGN_OR_RETURN(auto m, Start(options, std::move(argv)));
  m->EnableMigrationEvents();
  m->state_->Send({{"execute", "migrate-incoming"}, {"arguments", {{"uri", "exec:cat " + quoted}}}});
  NFC_RETURN_IF_ERROR_CTX(m->WaitMigration(), "load " + memory_path);
  m->Resume();
  std::lock_guard lock(m->state_->mu);
  m->state_->port_open = open_ports;
  return m;
}

void GuestMachine::EnableMigrationEvents() {
  {
    std::lock_guard lock(state_->mu);
    state_->migration.clear();
  }
  // MIGRATION events come only with the `events` capability.
  state_->Send({{"execute", "migrate-set-capabilities"},
                {"arguments", {{"capabilities", {{{"capability", "events"}, {"state", true}}}}}}});
}

Status GuestMachine::WaitMigration() {
  std::unique_lock lock(state_->mu);
  bool ended = state_->changed.wait_for(lock, 300s, [this] {
    const std::string& m = state_->migration;
    return m == "completed" || m == "failed" || m == "cancelled" || state_->qmp_closed;
  });
  if (!ended) return Error::Timeout("QEMU's migration did not end in 300 s");
  if (state_->migration != "completed") {
    return Error::Internal("QEMU's migration ended " +
                           (state_->migration.empty() ? std::string("with QEMU") : state_->migration));
  }
  return Ok();
}

Result<std::unique_ptr<GuestMachine>> GuestMachine::Start(const MachineOptions& options,
                                                          std::vector<std::string> argv) {
  std::unique_ptr<GuestMachine> m(new GuestMachine(options));
  m->state_ = std::make_shared<State>();
  std::string qmp_path = options.work_dir + "/qmp.sock";
  ::unlink(qmp_path.c_str());
  for (const auto& [port, name] : options.vsock_relays)
    ::unlink((options.work_dir + "/" + PortId(port) + ".sock").c_str());
  SpawnOptions spawn;
  spawn.argv = std::move(argv);
  spawn.stdout_fd = STDOUT_FILENO;  // the guest's serial console, where Firecracker writes it
  spawn.stderr_fd = STDERR_FILENO;
  spawn.parent_death_signal = SIGKILL;  // the stand-in killed (SIGKILL, as tests do to Firecracker): VM gone
  NFC_ASSIGN_OR_RETURN(Child child, Spawn(spawn));
  m->qemu_pid_ = child.pid;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  for (;;) {
    auto fd = ConnectUnix(qmp_path);
    if (fd.ok()) {
      m->state_->qmp = std::move(fd).value();
      break;
    }
    int status = 0;
    if (::waitpid(m->qemu_pid_, &status, WNOHANG) == m->qemu_pid_) {
      m->qemu_pid_ = -1;
      return Error::Unavailable("QEMU " + DescribeWaitStatus(status));
    }
    if (std::chrono::steady_clock::now() > deadline)
      return Error::Timeout("QEMU's QMP did not come up in 10 s");
    std::this_thread::sleep_for(10ms);
  }
  // QEMU waits (-S) until QMP listens, so no VSERPORT_CHANGE of the guest's early boot is missed. While an
  // incoming stream loads, cont only marks the VM to run once it is in.
  m->state_->Send({{"execute", "qmp_capabilities"}});
  m->state_->Send({{"execute", "cont"}});
  std::thread([state = m->state_] { state->ReadEvents(); }).detach();
  return m;
}

void GuestMachine::Pause() {
  state_->Send({{"execute", "stop"}});
}

void GuestMachine::Resume() {
  state_->Send({{"execute", "cont"}});
}

Status GuestMachine::SaveMemory(const std::string& path) {
  NFC_ASSIGN_OR_RETURN(std::string quoted, ShellQuoted(path));
  EnableMigrationEvents();
  // 32 MiB/s is QEMU's default throttle.
  state_->Send(
      {{"execute", "migrate-set-parameters"}, {"arguments", {{"max-bandwidth", uint64_t{1} << 36}}}});
  state_->Send({{"execute", "migrate"}, {"arguments", {{"uri", "exec:cat > " + quoted}}}});
  NFC_RETURN_IF_ERROR_CTX(WaitMigration(), "save to " + path);
  return Ok();
}

std::map<std::string, bool> GuestMachine::OpenPorts() const {
  std::lock_guard lock(state_->mu);
  return state_->port_open;
}

GuestMachine::~GuestMachine() {
  Kill();
}

void GuestMachine::Connect(uint32_t port, int host_fd, std::string early, uint32_t host_port) {
  bool listening = false;
  {
    std::lock_guard lock(state_->mu);
    listening = state_->port_open[PortId(port)];
  }
  auto guest = listening ? ConnectUnix(options_.work_dir + "/" + PortId(port) + ".sock")
                         : Result<UniqueFd>(Error::Unavailable("guest not listening"));
  if (!guest.ok()) {
    ::close(host_fd);  // Firecracker closes the host socket when the guest answers RST
    return;
  }
  std::string ok = "OK " + std::to_string(host_port) + "\n";
  int guest_fd = guest->Release();
  if (!WriteAll(host_fd, ok.data(), ok.size()) || !WriteAll(guest_fd, early.data(), early.size())) {
    ::close(host_fd);
    ::close(guest_fd);
    return;
  }
  std::thread(Relay, host_fd, guest_fd).detach();
}

Status GuestMachine::SendCtrlAltDel() {
  nlohmann::json keys = nlohmann::json::array();
  for (const char* k : {"ctrl", "alt", "delete"}) keys.push_back({{"type", "qcode"}, {"data", k}});
  state_->Send({{"execute", "send-key"}, {"arguments", {{"keys", keys}}}});
  return Ok();
}

std::optional<int> GuestMachine::Ended() {
  if (ended_ || qemu_pid_ < 0) return ended_;
  int status = 0;
  if (::waitpid(qemu_pid_, &status, WNOHANG) != qemu_pid_) return std::nullopt;
  qemu_pid_ = -1;
  std::unique_lock lock(state_->mu);
  // QEMU sends SHUTDOWN before it exits; let the reader see the end of QMP.
  state_->changed.wait_for(lock, 2s, [this] { return state_->qmp_closed; });
  const std::string& reason = state_->shutdown_reason;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && (reason == "guest-reset" || reason == "guest-panic")) {
    ended_ = 0;  // Firecracker exits 0 on a guest reset (vmm.md 2.1, 2.3)
  } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && reason == "guest-shutdown") {
    // Firecracker has no power-off: the guest halts and the process stays (vmm.md 2.2).
    std::cerr << "fake-firecracker: the guest powered off; Firecracker keeps running with the guest halted\n";
    return std::nullopt;
  } else {
    std::cerr << "fake-firecracker: the VM's QEMU ended: " << DescribeWaitStatus(status)
              << (reason.empty() ? "" : " (" + reason + ")") << "\n";
    ended_ = 2;  // "unexpected error"
  }
  return ended_;
}

void GuestMachine::Kill() {
  if (qemu_pid_ < 0) return;
  ::kill(qemu_pid_, SIGKILL);
  int status = 0;
  while (::waitpid(qemu_pid_, &status, 0) < 0 && errno == EINTR) {
  }
  qemu_pid_ = -1;
}

}  // namespace nfc::fakefc
