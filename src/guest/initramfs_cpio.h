// Writing the per-task part of the guest's initramfs: a small newc ("070701") cpio archive the host appends
// to the shared, prebuilt initramfs of the guest kernel.
//
// Linux unpacks every archive concatenated in the initrd, compressed or not, as long as each one starts on a
// 4-byte boundary (init/initramfs.c skips zero padding between archives). So the host never rebuilds or
// recompresses the shared image: it writes base + (padding) + this archive to the task's initrd file, or
// hands Firecracker/QEMU the concatenation. Later entries overwrite earlier ones with the same name.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "guest/task_spec.h"

namespace nfc::guest {

struct CpioEntry {
  std::string path;         // relative, no leading '/', e.g. "nomad/task.json"
  uint32_t mode = 0100600;  // full st_mode including the type bits (S_IFREG/S_IFDIR)
  std::string data;         // file contents (empty for directories)
};

// Builds a newc archive with the entries (parent directories are added automatically, mode 0755, root-owned),
// terminated by TRAILER!!! and padded to a multiple of 4 bytes.
Result<std::string> BuildCpio(const std::vector<CpioEntry>& entries);

// The task archive: nomad/task.json (mode 0600: it may hold secrets in env) with the spec's JSON.
Result<std::string> BuildTaskCpio(const TaskSpec& spec);

// Writes base_initramfs + zero padding to 4 bytes + BuildTaskCpio(spec) to out_path (created 0600, replaced
// atomically via a temporary file in the same directory).
Status WriteTaskInitramfs(const std::string& base_initramfs, const TaskSpec& spec,
                          const std::string& out_path);

// Reads a newc archive (uncompressed) back: for tests and for `nomad-init --check-initramfs`.
Result<std::vector<CpioEntry>> ParseCpio(std::string_view archive);

}  // namespace nfc::guest
