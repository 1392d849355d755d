#include "driver/fingerprint.h"

#include <fcntl.h>

#include "base/unique_fd.h"
#include "driver/host_probe.h"
#include "driver/kvm_probe.h"
#include "sandbox/cgroup.h"

namespace nfc::driver {
namespace {

struct BackendProbe {
  bool usable = false;
  std::string path;
  std::string version;
  std::string problem;  // why not usable
};

BackendProbe ProbeBackendProgram(const std::string& configured, std::string_view option) {
  BackendProbe probe;
  ProgramProbe program = ProbeProgram(configured);
  probe.path = program.path;
  probe.version = program.version;
  probe.problem = program.problem;
  // Not found: say which option names it. A program that does not answer --version: its own error.
  if (program.path.empty()) probe.problem += " (set " + std::string(option) + " in the plugin config)";
  probe.usable = program.problem.empty();
  return probe;
}

bool CanOpen(const char* device) {
  UniqueFd fd(::open(device, O_RDWR | O_CLOEXEC));
  return static_cast<bool>(fd);
}

}  // namespace

FingerprintResult ProbeFingerprint(const PluginConfig& config, const std::string& driver_name,
                                   const std::string& plugin_version) {
  FingerprintResult result;
  const std::string prefix = "driver." + driver_name + ".";
  auto& attrs = result.attributes;
  attrs[prefix + "version"] = plugin_version;

  const KvmStatus kvm = ProbeKvm(KvmDevicePath());
  attrs[prefix + "kvm"] = kvm.accessible;
  // What `doctor` finds, for `nomad node status -verbose`: whether a guest really runs on KVM (probed once
  // per plugin process: it forks), the cgroup version, and the devices networking and vsock use.
  static const bool kvm_usable = ProbeKvmGuest(KvmDevicePath()).result == KvmGuestProbe::Result::kUsable;
  attrs[prefix + "kvm.usable"] = kvm_usable;
  auto cgroups = sandbox::CgroupHost::Detect();
  attrs[prefix + "cgroup.version"] = std::string(!cgroups.ok()                                     ? "none"
                                                 : cgroups->version == sandbox::CgroupVersion::kV2 ? "v2"
                                                                                                   : "v1");
  attrs[prefix + "tun"] = CanOpen("/dev/net/tun");
  attrs[prefix + "vhost_vsock"] = CanOpen("/dev/vhost-vsock");

  BackendProbe firecracker;
  if (config.backend != Backend::kQemu) {
    firecracker = ProbeBackendProgram(config.firecracker_path, "firecracker_path");
    if (firecracker.usable) attrs[prefix + "firecracker.version"] = firecracker.version;
    if (firecracker.usable && !kvm.accessible) {
      firecracker.usable = false;
      firecracker.problem = "Firecracker needs KVM: " + kvm.detail;
    }
  }
  BackendProbe qemu;
  if (config.backend != Backend::kFirecracker) {
    qemu = ProbeBackendProgram(config.qemu_path, "qemu_path");
    if (qemu.usable) attrs[prefix + "qemu.version"] = qemu.version;
  }

  std::string backend_problem;
  const BackendProbe* selected = nullptr;
  std::string selected_name = "none";
  switch (config.backend) {
    case Backend::kFirecracker:
      if (firecracker.usable)
        selected = &firecracker, selected_name = "firecracker";
      else
        backend_problem = "backend \"firecracker\" is not usable: " + firecracker.problem;
      break;
    case Backend::kQemu:
      if (qemu.usable)
        selected = &qemu, selected_name = "qemu";
      else
        backend_problem = "backend \"qemu\" is not usable: " + qemu.problem + " (install qemu-system-x86)";
      break;
    case Backend::kAuto:
      if (firecracker.usable)
        selected = &firecracker, selected_name = "firecracker";
      else if (qemu.usable)
        selected = &qemu, selected_name = "qemu";
      else
        backend_problem = "no usable VMM: firecracker: " + firecracker.problem + "; qemu: " + qemu.problem +
                          " (install Firecracker with /dev/kvm access, or qemu-system-x86)";
      break;
  }
  attrs[prefix + "backend"] = selected_name;
  if (selected != nullptr) attrs[prefix + "vmm.version"] = selected->version;

  std::string guest_problem;
  if (Status s = CheckReadableFile(config.kernel_path); !s.ok()) {
    guest_problem =
        "guest kernel missing: " + s.error().message() +
        " (install the guest artifacts, e.g. with scripts/debian-kernel, or set kernel_path in the "
        "plugin config)";
  } else if (!config.initrd_path.empty()) {
    if (Status i = CheckReadableFile(config.initrd_path); !i.ok()) {
      guest_problem = "guest initramfs missing: " + i.error().message() +
                      " (install the guest artifacts, or set initrd_path in the plugin config; an empty "
                      "initrd_path boots without one)";
    }
  }

  if (backend_problem.empty() && guest_problem.empty()) {
    result.health = FingerprintResult::Health::kHealthy;
    result.description = "ready: " + selected_name + " " + selected->version;
  } else {
    result.health = FingerprintResult::Health::kUnhealthy;
    result.description = backend_problem;
    if (!guest_problem.empty())
      result.description += (result.description.empty() ? "" : "; ") + guest_problem;
  }
  return result;
}

}  // namespace nfc::driver
