// The `image` CLI command (pull, ls, rm, prune) of the plugin binary, also the standalone nfc-image-tool.
// src/cli's command table calls it.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nfc::image {

// The plugin's default data directory (driver::kDefaultDataDir; this library does not depend on the driver's,
// src/cli's test checks they agree). The cache is StoreRoot(data dir).
inline constexpr std::string_view kDefaultDataDir = "/var/lib/nomad-firecracker";

// program: what runs the command, as typed before the sub-command ("nomad-driver-firecracker image",
// "nfc-image-tool"); args: from the sub-command on. Returns the exit code (0 ok, 1 failure, 2 usage).
int RunImageCommand(std::string_view program, std::span<char* const> args);

// The help of sub-command `sub` (pull, ls, rm, prune), or of the whole command when `sub` is none of them.
std::string ImageHelp(std::string_view program, std::string_view sub);

// The flags sub-command `sub` accepts ("--data-dir", ...): for tests of the help texts.
std::vector<std::string> ImageFlagNames(std::string_view sub);

}  // namespace nfc::image
