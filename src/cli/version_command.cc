// `version`: the plugin's version, its driver name (from the file name) and the Nomad driver API it speaks.
#include <cstdio>
#include <string>
#include <vector>

#include "base/flags.h"
#include "cli/command.h"
#include "driver/driver.h"
#include "driver/naming.h"

namespace nfc::cli {
namespace {

std::string VersionHelp(std::string_view program, std::span<const std::string> /*topic*/) {
  return "usage: " + std::string(program) + " version\n       " + std::string(program) + " --version\n\n" +
         flags::Paragraph(
             "Prints the plugin's version, the driver name jobs use with it (this file's name without a "
             "leading \"nomad-driver-\") and the version of Nomad's driver API it speaks. It takes no "
             "flags. Exit code 0, 2 for a bad command line.");
}

std::vector<std::string> VersionFlagNames(std::span<const std::string> /*topic*/) {
  return {};
}

int RunVersion(const Invocation& invocation) {
  std::vector<std::string> positional;
  auto parsed = flags::Parse({}, Args(invocation), &positional);
  if (!parsed.ok()) return UsageError(invocation, "version", parsed.error().message());
  if (*parsed == flags::Outcome::kHelp) return PrintHelp(VersionHelp(invocation.program, {}));
  if (!positional.empty()) {
    return UsageError(invocation, "version", "unexpected argument \"" + positional[0] + "\"");
  }
  std::printf("nomad-driver-firecracker %.*s (driver name \"%s\", Nomad driver API %.*s)\n",
              static_cast<int>(driver::PluginVersion().size()), driver::PluginVersion().data(),
              driver::DriverNameFromPath(invocation.program).c_str(),
              static_cast<int>(driver::kDriverApiVersion.size()), driver::kDriverApiVersion.data());
  return 0;
}

}  // namespace

extern const Command kVersionCommand = {"version",  "",          "print the version",
                                        RunVersion, VersionHelp, VersionFlagNames};

}  // namespace nfc::cli
