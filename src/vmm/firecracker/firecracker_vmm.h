// The Firecracker backend of nfc::vmm::Vmm: spawns `firecracker --api-sock`, configures it over the API and
// boots. See docs/vmm.md for the request sequence and the version differences it handles.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "vmm/vmm.h"

namespace nfc::vmm::firecracker {

Result<std::unique_ptr<Vmm>> CreateFirecrackerVmm(VmConfig config);
Result<std::unique_ptr<Vmm>> AttachFirecrackerVmm(const VmRecord& record);

// The kernel arguments this backend puts before VmConfig::kernel_args (console on/off, reboot=k, panic=1,
// i8042 probing cut short, pci=off). Exposed for tests and docs.
std::vector<std::string> PlatformKernelArgs(const VmConfig& config);

// Whether the kernel image has virtio_mmio's `device` parameter built in
// (CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=y with VIRTIO_MMIO=y): the only way a guest finds its devices on
// Firecracker before 1.8, which has no ACPI.
Result<bool> KernelReadsMmioCmdline(const std::string& kernel_path);

// What a Firecracker exit code means (FcExitCode, src/vmm/src/lib.rs), e.g. 148 -> "seccomp violation".
std::string_view DescribeExitCode(int code);

}  // namespace nfc::vmm::firecracker
