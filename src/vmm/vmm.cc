#include "vmm/vmm.h"

#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "vmm/firecracker/firecracker_vmm.h"
#include "vmm/qemu/qemu_vmm.h"

namespace nfc::vmm {
namespace {

bool IdChars(std::string_view s, bool allow_dash, bool allow_underscore) {
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (allow_dash && c == '-') || (allow_underscore && c == '_');
    if (!ok) return false;
  }
  return true;
}

bool ValidMac(std::string_view mac) {
  if (mac.size() != 17) return false;
  for (size_t i = 0; i < mac.size(); i++) {
    char c = mac[i];
    if (i % 3 == 2) {
      if (c != ':') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

Status RequireFile(const std::string& field, const std::string& path) {
  if (path.empty()) return Error::InvalidArgument(field + " is required");
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Error::Errno(field + " " + path).Context("vm config");
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    return Error::InvalidArgument("vm config: " + field + " " + path +
                                  " is not a regular file or block device");
  }
  return Ok();
}

}  // namespace

std::string_view BackendName(Backend backend) {
  return backend == Backend::kFirecracker ? "firecracker" : "qemu";
}

Result<Backend> ParseBackend(std::string_view name) {
  if (name == "firecracker") return Backend::kFirecracker;
  if (name == "qemu") return Backend::kQemu;
  return Error::InvalidArgument("unknown VMM backend '" + std::string(name) + "' (want firecracker or qemu)");
}

std::string_view GuestTransportName(GuestTransport transport) {
  switch (transport) {
    case GuestTransport::kFirecrackerVsock:
      return "firecracker-vsock";
    case GuestTransport::kAfVsock:
      return "vsock";
    case GuestTransport::kVirtioSerial:
      return "virtio-serial";
  }
  return "?";
}

std::string_view ExitKindName(VmExit::Kind kind) {
  switch (kind) {
    case VmExit::Kind::kGuestStopped:
      return "guest-stopped";
    case VmExit::Kind::kVmmCrashed:
      return "vmm-crashed";
    case VmExit::Kind::kKilled:
      return "killed";
    case VmExit::Kind::kInternalError:
      return "internal-error";
    case VmExit::Kind::kUnresponsive:
      return "unresponsive";
    case VmExit::Kind::kUnknown:
      return "unknown";
  }
  return "?";
}

std::string NicId(size_t index) {
  return "eth" + std::to_string(index);
}

std::string VolumeDriveId(size_t index) {
  return "vol" + std::to_string(index);
}

Status ValidateConfig(const VmConfig& c) {
  if (c.id.empty() || c.id.size() > 64 || !IdChars(c.id, true, false)) {
    return Error::InvalidArgument("vm config: id '" + c.id + "' must be 1-64 characters of [A-Za-z0-9-]");
  }
  struct stat st;
  if (c.state_dir.empty() || ::stat(c.state_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Error::InvalidArgument("vm config: state_dir '" + c.state_dir + "' is not an existing directory");
  }
  if (c.unresponsive_after < std::chrono::seconds(1)) {
    return Error::InvalidArgument("vm config: unresponsive_after " +
                                  std::to_string(c.unresponsive_after.count()) +
                                  " ms is below 1 s: a VMM busy for a moment would be killed as hung");
  }
  NFC_RETURN_IF_ERROR(RequireFile("kernel_path", c.kernel_path));
  if (!c.initrd_path.empty()) NFC_RETURN_IF_ERROR(RequireFile("initrd_path", c.initrd_path));
  if (c.sandbox) {
    if (c.sandbox->uid == 0 || c.sandbox->gid == 0) {
      return Error::InvalidArgument("vm config: sandbox uid " + std::to_string(c.sandbox->uid) + " / gid " +
                                    std::to_string(c.sandbox->gid) + ": a confined VMM never runs as root");
    }
    if (c.sandbox->jail_dir.empty() || c.sandbox->jail_dir[0] != '/' ||
        ::stat(c.sandbox->jail_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Error::InvalidArgument("vm config: sandbox jail_dir '" + c.sandbox->jail_dir +
                                    "' is not an existing absolute directory");
    }
  }
  if (c.jailer) {
    if (c.jailer->uid == 0 || c.jailer->gid == 0) {
      return Error::InvalidArgument("vm config: jailer uid " + std::to_string(c.jailer->uid) + " / gid " +
                                    std::to_string(c.jailer->gid) + ": a confined VMM never runs as root");
    }
    if (c.vmm_binary.empty() || c.vmm_binary[0] != '/') {
      return Error::InvalidArgument("vm config: vmm_binary '" + c.vmm_binary +
                                    "' must be an absolute path for the jailer's --exec-file");
    }
    if (c.jailer->chroot_base.empty() || c.jailer->chroot_base[0] != '/') {
      return Error::InvalidArgument("vm config: jailer chroot_base '" + c.jailer->chroot_base +
                                    "' is not an absolute path");
    }
    if (!c.jailer->parent_cgroup.empty() &&
        (c.jailer->parent_cgroup[0] == '/' || c.jailer->parent_cgroup.find("..") != std::string::npos)) {
      return Error::InvalidArgument("vm config: jailer parent_cgroup '" + c.jailer->parent_cgroup +
                                    "' must be relative, without \"..\"");
    }
  }
  if (c.restore_from) {
    NFC_RETURN_IF_ERROR(RequireFile("restore_from.state_path", c.restore_from->state_path));
    if (!c.restore_from->memory_path.empty()) {
      NFC_RETURN_IF_ERROR(RequireFile("restore_from.memory_path", c.restore_from->memory_path));
    }
  }
  if (c.vcpus < 1 || c.vcpus > 32) {
    return Error::InvalidArgument("vm config: vcpus " + std::to_string(c.vcpus) + " out of range 1-32");
  }
  if (c.memory_mib < 32) {
    return Error::InvalidArgument("vm config: memory_mib " + std::to_string(c.memory_mib) + " is below 32");
  }
  std::vector<std::string> seen;
  for (const auto& d : c.drives) {
    if (d.id.empty() || d.id.size() > 64 || !IdChars(d.id, false, true)) {
      return Error::InvalidArgument("vm config: drive id '" + d.id +
                                    "' must be 1-64 characters of [A-Za-z0-9_]");
    }
    if (std::find(seen.begin(), seen.end(), d.id) != seen.end()) {
      return Error::InvalidArgument("vm config: drive id '" + d.id + "' used twice");
    }
    seen.push_back(d.id);
    NFC_RETURN_IF_ERROR(RequireFile("drive " + d.id + " path", d.path));
  }
  for (const auto& n : c.nics) {
    if (n.id.empty() || n.id.size() > 64 || !IdChars(n.id, false, true)) {
      return Error::InvalidArgument("vm config: network interface id '" + n.id +
                                    "' must be 1-64 characters of [A-Za-z0-9_]");
    }
    if (n.tap.empty() || n.tap.size() > 15) {
      return Error::InvalidArgument("vm config: network interface " + n.id + ": tap '" + n.tap +
                                    "' must be 1-15 characters");
    }
    if (!n.mac.empty() && !ValidMac(n.mac)) {
      return Error::InvalidArgument("vm config: network interface " + n.id + ": mac '" + n.mac +
                                    "' is not aa:bb:cc:dd:ee:ff");
    }
  }
  if (c.guest_channel) {
    if (c.guest_channel->socket_path.empty()) {
      return Error::InvalidArgument("vm config: guest_channel.socket_path is required");
    }
    if (c.guest_channel->guest_cid < 3) {
      return Error::InvalidArgument("vm config: guest_channel.guest_cid " +
                                    std::to_string(c.guest_channel->guest_cid) + " must be >= 3");
    }
  }
  if (c.console.mode == ConsoleConfig::Mode::kFile && c.console.path.empty()) {
    return Error::InvalidArgument("vm config: console.path is required when the console goes to a file");
  }
  return Ok();
}

std::string VmRecord::ToJson() const {
  nlohmann::json j;
  j["version"] = 1;
  j["backend"] = std::string(BackendName(backend));
  j["id"] = id;
  j["pid"] = pid;
  j["start_time"] = start_time;
  j["api_socket"] = api_socket;
  j["console_path"] = console_path;
  j["kvm"] = kvm;
  j["vmm_version"] = vmm_version;
  if (!jail_dir.empty()) j["jail_dir"] = jail_dir;
  if (guest) {
    j["guest"] = {{"transport", std::string(GuestTransportName(guest->transport))},
                  {"socket_path", guest->socket_path},
                  {"guest_cid", guest->guest_cid},
                  {"port", guest->port}};
  }
  return j.dump();
}

Result<VmRecord> VmRecord::FromJson(std::string_view text) {
  try {
    auto j = nlohmann::json::parse(text);
    if (j.value("version", 0) != 1) {
      return Error::InvalidArgument("vm record: unsupported version " +
                                    j.value("version", nlohmann::json()).dump());
    }
    VmRecord r;
    NFC_ASSIGN_OR_RETURN(r.backend, ParseBackend(j.at("backend").get<std::string>()));
    r.id = j.at("id").get<std::string>();
    r.pid = j.at("pid").get<pid_t>();
    r.start_time = j.at("start_time").get<unsigned long long>();
    r.api_socket = j.at("api_socket").get<std::string>();
    r.console_path = j.value("console_path", "");
    r.kvm = j.value("kvm", false);
    r.vmm_version = j.value("vmm_version", "");
    r.jail_dir = j.value("jail_dir", "");
    if (j.contains("guest")) {
      const auto& g = j["guest"];
      GuestEndpoint e;
      std::string t = g.at("transport").get<std::string>();
      if (t == "firecracker-vsock") {
        e.transport = GuestTransport::kFirecrackerVsock;
      } else if (t == "vsock") {
        e.transport = GuestTransport::kAfVsock;
      } else if (t == "virtio-serial") {
        e.transport = GuestTransport::kVirtioSerial;
      } else {
        return Error::InvalidArgument("vm record: unknown guest transport '" + t + "'");
      }
      e.socket_path = g.value("socket_path", "");
      e.guest_cid = g.value("guest_cid", 0u);
      e.port = g.value("port", 0u);
      r.guest = e;
    }
    return r;
  } catch (const nlohmann::json::exception& e) {
    return Error::InvalidArgument(std::string("vm record: ") + e.what());
  }
}

Result<std::unique_ptr<Vmm>> CreateVmm(Backend backend, VmConfig config) {
  NFC_RETURN_IF_ERROR(ValidateConfig(config));
  if (backend == Backend::kFirecracker) return firecracker::CreateFirecrackerVmm(std::move(config));
  return qemu::CreateQemuVmm(std::move(config));
}

Result<std::unique_ptr<Vmm>> AttachVmm(const VmRecord& record) {
  if (record.backend == Backend::kFirecracker) return firecracker::AttachFirecrackerVmm(record);
  return qemu::AttachQemuVmm(record);
}

}  // namespace nfc::vmm
