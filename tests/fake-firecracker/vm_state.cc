#include "vm_state.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <set>

#include "kernel_image.h"
#include "snapshot.h"

namespace nfc::fakefc {

int Listen(const std::string& path, std::string* err) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    *err = "path too long";
    return -1;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 16) != 0) {
    *err = std::strerror(errno) + std::string(" (os error ") + std::to_string(errno) + ")";
    if (fd >= 0) ::close(fd);
    return -1;
  }
  return fd;
}

// Firecracker's state rules, enforced after the body is known to be well-formed.
Reply VmState::Apply(const std::string& method, const std::string& tmpl, const nlohmann::json& j) {
  static const std::set<std::string> kPreBootOnly = {"PUT /boot-source",
                                                     "PUT /machine-config",
                                                     "PATCH /machine-config",
                                                     "PUT /drives/{drive_id}",
                                                     "PUT /network-interfaces/{iface_id}",
                                                     "PUT /vsock",
                                                     "PUT /mmds/config",
                                                     "PUT /balloon",
                                                     "PUT /entropy",
                                                     "PUT /cpu-config",
                                                     "PUT /serial",
                                                     "PUT /pmem/{id}",
                                                     "PUT /hotplug/memory",
                                                     "PUT /snapshot/load"};
  static const std::set<std::string> kPostBootOnly = {"PATCH /drives/{drive_id}",
                                                      "PATCH /network-interfaces/{iface_id}", "PATCH /vm",
                                                      "PUT /snapshot/create", "PATCH /pmem/{id}"};
  std::string key = method + " " + tmpl;
  if (started_ && kPreBootOnly.count(key)) {
    return Refuse("The requested operation is not supported after starting the microVM.");
  }
  if (!started_ && kPostBootOnly.count(key)) {
    return Refuse("The requested operation is not supported before starting the microVM.");
  }
  if (method == "GET") return Get(tmpl);
  if (key == "PUT /actions") return Action(j["action_type"].get<std::string>());
  if (key == "PUT /logger") return Logger(j);
  if (key == "PUT /metrics") return Metrics(j);
  if (key == "PUT /boot-source") return BootSource(j);
  if (key == "PUT /machine-config") return MachineConfig(j);
  if (key == "PATCH /machine-config") return PatchMachineConfig(j);
  if (key == "PUT /drives/{drive_id}") return Drive(j);
  if (key == "PUT /network-interfaces/{iface_id}") {
    Upsert("network-interfaces", "iface_id", j);
    return {};
  }
  if (key == "PUT /vsock") return Vsock(j);
  if (key == "PATCH /vm") return PatchVm(j["state"].get<std::string>());
  if (key == "PUT /snapshot/create") return CreateSnapshot(j);
  if (key == "PUT /snapshot/load") return LoadSnapshot(j);
  if (key == "PATCH /drives/{drive_id}") return PatchDrive(j);
  return {};
}

Reply VmState::PatchVm(const std::string& state) {
  if (state == "Paused") {
    if (machine_) machine_->Pause();
    paused_ = true;
    return {};
  }
  if (restore_) {
    Reply booted = BootRestored();
    if (booted.status != 204) return booted;
  } else if (machine_) {
    machine_->Resume();
  }
  paused_ = false;
  return {};
}

// Firecracker writes the paused VM's state and memory (snapshot.h says what the stand-in writes).
Reply VmState::CreateSnapshot(const nlohmann::json& j) {
  if (!paused_) return Refuse("Create snapshot error: the microVM must be paused first (PATCH /vm)");
  std::string state = j["snapshot_path"].get<std::string>(), memory = j["mem_file_path"].get<std::string>();
  SavedVm saved{spec_.version(), VmConfigNow(),
                machine_ ? machine_->OpenPorts() : std::map<std::string, bool>{}};
  Status wrote = WriteSnapshotFile(state, saved);
  if (wrote.ok() && machine_) wrote = machine_->SaveMemory(memory);
  if (wrote.ok() && !machine_)
    wrote = WriteSparse(memory, MachineConfigNow()["mem_size_mib"].get<uint64_t>() << 20);
  if (!wrote.ok()) return Refuse("Create snapshot error: " + wrote.error().message());
  Log("Snapshot created");
  return {};
}

Status VmState::WriteSparse(const std::string& path, uint64_t size) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Error::Errno("open " + path);
  int rc = ::ftruncate(fd, static_cast<off_t>(size));
  ::close(fd);
  return rc == 0 ? Ok() : Error::Errno("ftruncate " + path);
}

// Only the logger and metrics may be configured before a load (vmm.md 1.4). A load that fails ends
// Firecracker once the answer is out.
Reply VmState::LoadSnapshot(const nlohmann::json& j) {
  for (const char* configured : {"boot-source", "machine-config", "drives", "network-interfaces", "vsock"}) {
    if (config_.contains(configured))
      return Refuse("Loading a microVM snapshot not allowed after configuring boot-specific resources.");
  }
  const nlohmann::json& backend = j.value("mem_backend", nlohmann::json::object());
  if (backend.value("backend_type", "File") != "File") return Refuse("Not implemented by the fake: Uffd");
  std::string memory =
      j.contains("mem_file_path") ? j["mem_file_path"].get<std::string>() : backend.value("backend_path", "");
  auto fail = [this](const std::string& why) {
    after_response = [this] { exit_code = 1; };
    return Refuse("Load snapshot error: " + why);
  };
  if (!Exists(memory)) return fail("cannot open the memory file " + memory);
  auto saved = ReadSnapshotFile(j["snapshot_path"].get<std::string>());
  if (!saved.ok()) return fail(saved.error().message());
  auto vm = ApplyLoadOverrides(saved->vm, j);
  if (!vm.ok()) return fail(vm.error().message());
  for (const char* sink : {"logger", "metrics"}) {
    if (config_.contains(sink)) (*vm)[sink] = config_[sink];
  }
  config_ = std::move(vm).value();
  if (config_.contains("vsock")) {
    std::string err;
    vsock_fd_ = Listen(config_["vsock"]["uds_path"].get<std::string>(), &err);
    if (vsock_fd_ < 0) return fail("vsock socket: " + err);
  }
  started_ = true;
  paused_ = true;
  restore_ = Restore{memory, saved->open_ports};
  Log("Snapshot loaded");
  if (j.value("resume_vm", false)) return PatchVm("Resumed");
  return {};
}

// Before the resume of a loaded snapshot: the drive's backing file changes. The stand-in does not swap the
// file under a running QEMU.
Reply VmState::PatchDrive(const nlohmann::json& j) {
  std::string id = j["drive_id"].get<std::string>();
  for (auto& d : config_["drives"]) {
    if (d.value("drive_id", "") != id) continue;
    if (j.contains("path_on_host")) {
      if (!Exists(j["path_on_host"]))
        return Refuse("Unable to patch the block device: no file " + j["path_on_host"].dump());
      if (machine_ && !restore_) return Refuse("Not implemented by the fake: PATCH /drives on a running VM");
      d["path_on_host"] = j["path_on_host"];
    }
    return {};
  }
  return Refuse("Invalid block device ID!");
}

Reply VmState::BootRestored() {
  Restore r = std::move(*restore_);
  restore_.reset();
  if (o_.boot_qemu.empty()) return {};
  auto booted = GuestMachine::Restore(MachineOptionsNow(), BootFilesForQemu(VmConfigNow()), r.memory_path,
                                      r.open_ports);
  if (!booted.ok()) return Refuse("Failed to resume the microVM: " + booted.error().message());
  machine_ = std::move(booted).value();
  return {};
}

// Before 1.14 Firecracker opens log and metrics sinks without creating them; 1.14 creates missing files.
std::string VmState::OpenSink(const std::string& path) {
  int flags = O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC | (spec_.AtLeast(1, 14) ? O_CREAT : 0);
  int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) {
    return "Failed to open target file: " + std::string(std::strerror(errno)) + " (os error " +
           std::to_string(errno) + ")";
  }
  ::close(fd);
  return "";
}

Reply VmState::Logger(const nlohmann::json& j) {
  if (logger_configured_) return Refuse("Reinitialization of logger not allowed.");
  if (j.contains("log_path") && j["log_path"].is_string()) {
    std::string err = OpenSink(j["log_path"].get<std::string>());
    if (!err.empty()) return Refuse(err);
  }
  logger_configured_ = true;
  sinks_.ConfigureLogger(j);
  Log("Running Firecracker v" + spec_.version());
  config_["logger"] = j;
  return {};
}

Reply VmState::Metrics(const nlohmann::json& j) {
  if (metrics_configured_) return Refuse("Reinitialization of metrics not allowed.");
  std::string err = OpenSink(j["metrics_path"].get<std::string>());
  if (!err.empty()) return Refuse(err);
  metrics_configured_ = true;
  sinks_.ConfigureMetrics(j["metrics_path"].get<std::string>());
  config_["metrics"] = j;
  return {};
}

// Firecracker opens the kernel and initrd here; it reads the kernel only at InstanceStart.
Reply VmState::BootSource(const nlohmann::json& j) {
  if (!Exists(j["kernel_image_path"])) {
    return Refuse("The kernel file cannot be opened: No such file or directory (os error 2)");
  }
  if (j.contains("initrd_path") && j["initrd_path"].is_string() && !Exists(j["initrd_path"])) {
    return Refuse(
        "The initrd file cannot be opened due to invalid path or invalid permissions. No such file or "
        "directory (os error 2)");
  }
  config_["boot-source"] = j;
  return {};
}

Reply VmState::MachineConfig(const nlohmann::json& j) {
  uint64_t vcpus = j["vcpu_count"].get<uint64_t>();
  bool smt = j.contains("smt") && j["smt"].is_boolean() && j["smt"].get<bool>();
  if (smt && vcpus > 1 && vcpus % 2 != 0) {
    return Refuse(
        "The vCPU number is invalid! The vCPU number can only be 1 or an even number when SMT is enabled.");
  }
  config_["machine-config"] = j;
  return {};
}

// The spec's PATCH body is the full MachineConfiguration (required fields included), so what reaches here
// names at least vcpu_count and mem_size_mib; the rest keeps its current value.
Reply VmState::PatchMachineConfig(const nlohmann::json& j) {
  nlohmann::json merged = MachineConfigNow();
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_null()) merged[it.key()] = it.value();
  }
  return MachineConfig(merged);
}

Reply VmState::Drive(const nlohmann::json& j) {
  if (j.contains("path_on_host") && j["path_on_host"].is_string() && !Exists(j["path_on_host"])) {
    return Refuse(
        "Unable to create the block device: BackingFile(Os { code: 2, kind: NotFound, message: \"No such "
        "file or directory\" }, \"" +
        j["path_on_host"].get<std::string>() + "\")");
  }
  Upsert("drives", "drive_id", j);
  return {};
}

Reply VmState::Vsock(const nlohmann::json& j) {
  if (vsock_fd_ >= 0) ::close(vsock_fd_);
  std::string err;
  vsock_fd_ = Listen(j["uds_path"].get<std::string>(), &err);
  if (vsock_fd_ < 0)
    return Refuse("Cannot create backend for vsock device: UnixBind(Os { message: \"" + err + "\" })");
  config_["vsock"] = j;
  return {};
}

// Devices keep their order and are replaced by id, as in GET /vm/config.
void VmState::Upsert(const std::string& list, const std::string& id_field, const nlohmann::json& j) {
  nlohmann::json& items = config_[list];
  if (!items.is_array()) items = nlohmann::json::array();
  for (auto& item : items) {
    if (item[id_field] == j[id_field]) {
      item = j;
      return;
    }
  }
  items.push_back(j);
}

bool VmState::Exists(const nlohmann::json& path) {
  struct stat st;
  return path.is_string() && ::stat(path.get<std::string>().c_str(), &st) == 0;
}

// What GET /machine-config shows: Firecracker's defaults under what was set.
nlohmann::json VmState::MachineConfigNow() const {
  nlohmann::json mc = {
      {"vcpu_count", 1}, {"mem_size_mib", 128}, {"smt", false}, {"track_dirty_pages", false}};
  if (config_.contains("machine-config")) {
    for (const auto& [k, v] : config_["machine-config"].items()) {
      if (!v.is_null()) mc[k] = v;
    }
  }
  return mc;
}

Reply VmState::Get(const std::string& tmpl) {
  if (tmpl == "/") {
    nlohmann::json info = {{"app_name", "Firecracker"},
                           {"id", o_.id},
                           {"state", started_ ? "Running" : "Not started"},
                           {"vmm_version", spec_.version()}};
    if (o_.answer_outside_spec) info["bogus"] = true;
    return Json(info);
  }
  if (tmpl == "/version") return Json({{"firecracker_version", spec_.version()}});
  if (tmpl == "/machine-config") return Json(MachineConfigNow());
  if (tmpl == "/vm/config") return Json(VmConfigNow());
  return Refuse("Not implemented by the fake: GET " + tmpl);
}

Reply VmState::Action(const std::string& action) {
  if (action == "InstanceStart") return InstanceStart();
  if (action == "SendCtrlAltDel") {
    if (!started_) return Refuse("The requested operation is not supported before starting the microVM.");
    if (machine_) {
      Status sent = machine_->SendCtrlAltDel();
      if (!sent.ok()) return Refuse("Failed to send CTRL+ALT+DEL: " + sent.error().message());
      return {};
    }
    // The "guest" reboots: FC exits with the code of a guest reset once the answer is out.
    if (o_.cad_exit >= 0) after_response = [this] { exit_code = o_.cad_exit; };
    return {};
  }
  if (action == "FlushMetrics") {
    if (!metrics_configured_) return Refuse("The metrics system is not initialized.");
    sinks_.FlushMetrics();
    return {};
  }
  return Refuse("unknown action");
}

// Firecracker builds the VM here: the kernel is loaded into guest memory, so a file that is not a vmlinux
// for x86-64 fails the start (kernel_image.h). The record notes how the fake would boot it.
Reply VmState::InstanceStart() {
  if (started_) return Refuse("The requested operation is not supported after starting the microVM.");
  if (!config_.contains("boot-source"))
    return Refuse("Cannot start microvm that was not configured: MissingKernelConfig");
  uint64_t memory = MachineConfigNow()["mem_size_mib"].get<uint64_t>() << 20;
  auto kernel = InspectElfKernel(config_["boot-source"]["kernel_image_path"].get<std::string>(), memory);
  if (!kernel.ok()) {
    return Refuse("Cannot load kernel due to invalid memory configuration or invalid kernel image: " +
                  kernel.error().message());
  }
  Reply reply;
  reply.note["kernel"] = {
      {"format", "elf64-x86_64"},
      {"entry", kernel->entry},
      {"pvh_entry", kernel->pvh_entry ? nlohmann::json(*kernel->pvh_entry) : nlohmann::json()},
      // PVH boot exists from 1.12 on; older versions ignore the note.
      {"boot_protocol", kernel->pvh_entry && spec_.AtLeast(1, 12) ? "pvh" : "linux-64bit"}};
  if (!o_.boot_qemu.empty()) {
    MachineOptions mo = MachineOptionsNow();
    auto booted = GuestMachine::Boot(mo, VmConfigNow());
    if (!booted.ok()) return Refuse("Failed to start the microVM: " + booted.error().message());
    machine_ = std::move(booted).value();
    reply.note["booted"] = {{"acpi", mo.acpi}};
  }
  Log("Successfully started microvm");
  started_ = true;
  if (o_.crash_after_ms >= 0) {
    crash_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(o_.crash_after_ms);
  }
  return reply;
}

// Firecracker restores a guest from its memory file alone and never opens the kernel again. QEMU, which plays
// the guest here, needs a kernel (and the initrd) on its command line to start at all, although the stream
// then replaces the memory they were loaded into. A snapshot made elsewhere (a template built outside the
// jail that restores it) names files this process cannot see: then the ones its jail holds are taken, which
// the backend places in every jail under these names.
nlohmann::json VmState::BootFilesForQemu(nlohmann::json config) {
  if (!config.contains("boot-source")) return config;
  auto& boot = config["boot-source"];
  for (const auto& [field, jailed] :
       {std::pair<const char*, const char*>{"kernel_image_path", "/vmlinux"}, {"initrd_path", "/initrd"}}) {
    if (!boot.contains(field) || !boot[field].is_string()) continue;
    if (!Exists(boot[field]) && Exists(nlohmann::json(jailed))) boot[field] = jailed;
  }
  return config;
}

nlohmann::json VmState::VmConfigNow() const {
  nlohmann::json full = config_;
  full["machine-config"] = MachineConfigNow();
  return full;
}

MachineOptions VmState::MachineOptionsNow() const {
  MachineOptions mo;
  mo.qemu = o_.boot_qemu;
  mo.work_dir = WorkDir();
  mo.id = o_.id;
  mo.acpi = spec_.AtLeast(1, 8);  // no ACPI before 1.8 (vmm.md 1.7, 5.1)
  mo.vsock_relays = o_.vsock_relays;
  return mo;
}

// Where the booted VM's QEMU keeps its sockets: beside the API socket (the VM's state directory), or the
// working directory without one (--no-api).
std::string VmState::WorkDir() const {
  if (o_.no_api) return ".";
  auto slash = o_.api_sock.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : o_.api_sock.substr(0, slash);
}

}  // namespace nfc::fakefc
