// ProbeKvmGuest: whether KVM can really run guest code here, not just whether /dev/kvm opens.
//
// A paravirtual or nested KVM can open, create VMs and still fail every real guest (docs/vmm.md, our own
// machines: "present but unusable"). The probe runs the smallest guest there is: one page of 16-bit code
// (`mov al, 0x42; out 0x10, al; hlt`) on one vCPU, and expects exactly an I/O exit on port 0x10 carrying
// 0x42, then a HLT exit. It runs in a child process bounded by a timeout, so a KVM that hangs or crashes the
// caller's process cannot take the plugin with it.
#pragma once

#include <chrono>
#include <string>

namespace nfc::driver {

struct KvmGuestProbe {
  enum class Result { kAbsent, kNoAccess, kUnusable, kUsable };
  Result result = Result::kAbsent;
  std::string detail;  // what was seen: the error, the unexpected exit, or the API version when usable
};

KvmGuestProbe ProbeKvmGuest(const std::string& device = "/dev/kvm",
                            std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace nfc::driver
