// The mke2fs command line both of our ext4 images start from: the read-only image (ext4_writer.cc) and the
// per-task scratch disk (scratch_disk.cc).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace nfc::image {

// mke2fs for ext4 with 4 KiB blocks and no reserved blocks, overwriting `path` without questions; `options`
// are the caller's own (journal, inode count, -E extended options). `blocks`: the size in blocks; nullopt:
// the size of the file. The label is cut to ext4's 16 bytes.
inline std::vector<std::string> Mke2fsArgv(const std::string& path, const std::string& label,
                                           const std::vector<std::string>& options,
                                           std::optional<uint64_t> blocks = std::nullopt) {
  std::vector<std::string> argv = {"mke2fs",  "-q", "-F",   "-t", "ext4", "-T",
                                   "default", "-b", "4096", "-m", "0"};
  argv.insert(argv.end(), options.begin(), options.end());
  argv.insert(argv.end(), {"-L", label.substr(0, 16), path});
  if (blocks) argv.push_back(std::to_string(*blocks));
  return argv;
}

}  // namespace nfc::image
