// Loading kernel modules without modprobe: finit_module(2) on the .ko files below /lib/modules/<release>/,
// each after the modules it depends on. Needed because Debian's cloud kernel builds virtio, overlay and vsock
// as modules and the initramfs carries no busybox (docs/guest-init.md lists them).
#pragma once

#include <string>
#include <vector>

#include "base/error.h"

namespace nfc::init {

struct ModuleLoadReport {
  std::vector<std::string> loaded;
  std::vector<std::string> already_present;  // built in or loaded before (EEXIST)
  std::vector<std::string> failed;           // "name: error"
};

// Module name of a path: "kernel/drivers/virtio/virtio_blk.ko" -> "virtio_blk" ('-' becomes '_').
std::string ModuleNameOf(const std::string& path);

// Load order for the modules of a modules.dep file ("path: dep dep ...", dependencies first per depmod),
// filtered to `wanted` names when non-empty (their dependencies are always included). Paths are as written in
// the file.
Result<std::vector<std::string>> ModuleLoadOrder(const std::string& modules_dep,
                                                 const std::vector<std::string>& wanted);

// Loads every module listed in <dir>/modules.dep (or, without that file, every *.ko below dir, in the order
// of `fallback_order` first, then by name). A missing dir is not an error (nothing to load).
ModuleLoadReport LoadModules(const std::string& dir, const std::vector<std::string>& fallback_order);

}  // namespace nfc::init
