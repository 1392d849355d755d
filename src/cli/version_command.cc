#include <cstdio>

#include "cli/command.h"
#include "driver/driver.h"
#include "driver/naming.h"

namespace nfc::cli {
namespace {

int RunVersion(const Invocation& invocation) {
  if (!invocation.args.empty()) {
    std::fprintf(stderr, "usage: %s version\n", invocation.program.c_str());
    return 2;
  }
  std::printf("nomad-driver-firecracker %.*s (driver name \"%s\", Nomad driver API %.*s)\n",
              static_cast<int>(driver::PluginVersion().size()), driver::PluginVersion().data(),
              driver::DriverNameFromPath(invocation.program).c_str(),
              static_cast<int>(driver::kDriverApiVersion.size()), driver::kDriverApiVersion.data());
  return 0;
}

}  // namespace

extern const Command kVersionCommand = {"version", "", "print the version", RunVersion};

}  // namespace nfc::cli
