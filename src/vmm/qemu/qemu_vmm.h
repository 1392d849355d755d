// The QEMU microvm backend of nfc::vmm::Vmm (vmm.md section 6, dev-machines.md): one qemu-system-x86_64
// process per VM, controlled over QMP; KVM when a probe boot shows it works, TCG otherwise.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "vmm/vmm.h"

namespace nfc::vmm::qemu {

Result<std::unique_ptr<Vmm>> CreateQemuVmm(VmConfig config);
Result<std::unique_ptr<Vmm>> AttachQemuVmm(const VmRecord& record);

struct KvmProbe {
  bool usable = false;
  std::string reason;  // why not (or "guest booted and reset in N ms")
};
// Really boots `kernel` under KVM (no initrd: it panics at the missing root, and with panic=-1 reboot=t
// -no-reboot QEMU exits) and calls KVM usable only if that whole round trip ends cleanly within a few
// seconds. /dev/kvm existing proves nothing (dev-machines.md: QEMU aborts, or the guest crawls into an
// internal error). The answer is cached per (binary, kernel) for the life of the process. Blocks up to ~10 s.
KvmProbe ProbeKvm(const std::string& qemu_binary, const std::string& kernel);

// Whether /dev/vhost-vsock can be opened (then the guest channel uses AF_VSOCK instead of virtio-serial).
bool VhostVsockAvailable();

struct CommandLine {
  std::vector<std::string> argv;
  std::vector<std::string> kernel_args;
};
struct CommandInputs {
  bool kvm = false;
  bool vhost_vsock = false;
  bool console = false;  // console on QEMU's stdout (-chardev stdio)
  std::string qmp_socket;
  unsigned tsc_khz = 0;  // TCG only: passed as tsc_early_khz
};
// Builds the QEMU argv for `config` (exposed for tests and docs/vmm.md).
CommandLine BuildCommandLine(const VmConfig& config, const CommandInputs& inputs);

// A value inside QEMU's -drive/-chardev option syntax, where ',' separates options: a literal comma is ",,".
std::string QemuEscape(const std::string& value);

// The host's TSC frequency in kHz as the kernel calibrated it (from /proc/cpuinfo "cpu MHz"); fallback
// 2400000.
unsigned HostTscKhz();

}  // namespace nfc::vmm::qemu
