// The driver's name as Nomad sees it (PluginInfoResponse.name, `driver = "..."` in jobs, node attribute
// driver.<name>): the binary's file name without a leading "nomad-driver-" (and without ".exe"). Installed as
// nomad-driver-firecracker it is "firecracker"; installed (or symlinked) as litegix-fc-driver it answers to
// "litegix-fc-driver", so the seed's job files run unchanged. Taken from argv[0], not /proc/self/exe, so a
// symlink's name counts.
#pragma once

#include <string>
#include <string_view>

namespace nfc::driver {

inline constexpr std::string_view kDefaultDriverName = "firecracker";

std::string DriverNameFromPath(std::string_view argv0);

}  // namespace nfc::driver
