// The `image` CLI command (pull, ls, rm, prune) of the plugin binary. src/cli's command table calls it.
#pragma once

#include <span>
#include <string_view>

namespace nfc::image {

// args: everything after "image". Returns the exit code (0 ok, 1 failure, 2 usage).
int RunImageCommand(std::string_view program, std::span<char* const> args);

}  // namespace nfc::image
