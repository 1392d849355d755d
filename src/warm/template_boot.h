// Building one template: boot the VM of a TemplateInputs with nomad-init told to await its task, wait until
// it says so, snapshot it, end it. Internal to nfc::warm (TemplateStore::Build holds the key's lock).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"
#include "warm/template.h"

namespace nfc::warm {

// The files of a template directory.
inline constexpr std::string_view kStateName = "snapshot.state";
inline constexpr std::string_view kMemoryName = "snapshot.mem";
inline constexpr std::string_view kInitrdName = "initramfs";

// Boots, snapshots and ends the template VM in `dir` (an empty directory: its sockets, scratch disk and
// console log are made there; what stays is the initramfs and the snapshot). On error the VM is gone.
Result<BootResult> BootAndSnapshot(const TemplateInputs& inputs, const std::string& dir,
                                   const BuildOptions& options);

}  // namespace nfc::warm
