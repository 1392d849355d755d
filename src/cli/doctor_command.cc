// `doctor`: whether this host can run microVMs with a given plugin configuration (driver/host_check.h).
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "cli/command.h"
#include "driver/host_check.h"
#include "driver/plugin_config.h"

namespace nfc::cli {
namespace {

constexpr const char* kUsage =
    "usage: %s doctor [--json] [--backend auto|firecracker|qemu] [--data-dir DIR] [--kernel PATH]\n"
    "       [--initrd PATH] [--firecracker-path PATH] [--jailer-path PATH] [--jailer true|false]\n"
    "       [--qemu-path PATH] [--cgroup-parent PATH]\n"
    "Checks this host for the plugin configuration the flags describe (the plugin's defaults otherwise):\n"
    "KVM (by running a probe guest), Firecracker, its jailer and QEMU with their versions, the guest kernel\n"
    "and initramfs, cgroups (by creating one with limits), /dev/net/tun, /dev/vhost-vsock, the data dir\n"
    "(free space, hard links). Exit code 0 when nothing failed, 1 otherwise, 2 for bad flags.\n";

// Applies one "--flag value"; an error names the flag and the value.
Status ApplyFlag(std::string_view flag, const std::string& value, driver::PluginConfig* config) {
  if (flag == "--backend") {
    auto b = driver::ParseBackend(value);
    if (!b.ok()) return Error::InvalidArgument("--backend " + value + ": " + b.error().message());
    config->backend = *b;
  } else if (flag == "--jailer") {
    if (value != "true" && value != "false") {
      return Error::InvalidArgument("--jailer " + value + ": must be true or false");
    }
    config->jailer = value == "true";
  } else if (flag == "--data-dir" || flag == "--kernel" || flag == "--initrd" ||
             flag == "--firecracker-path" || flag == "--jailer-path" || flag == "--qemu-path" ||
             flag == "--cgroup-parent") {
    if (value.empty() && flag != "--initrd")
      return Error::InvalidArgument(std::string(flag) + ": empty value");
    std::string* field = flag == "--data-dir"           ? &config->data_dir
                         : flag == "--kernel"           ? &config->kernel_path
                         : flag == "--initrd"           ? &config->initrd_path
                         : flag == "--firecracker-path" ? &config->firecracker_path
                         : flag == "--jailer-path"      ? &config->jailer_path
                         : flag == "--qemu-path"        ? &config->qemu_path
                                                        : &config->cgroup_parent;
    *field = value;
  } else {
    return Error::InvalidArgument("unknown flag " + std::string(flag));
  }
  return Ok();
}

int RunDoctor(const Invocation& invocation) {
  driver::PluginConfig config;
  bool json = false;
  const auto& args = invocation.args;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "--help" || arg == "-h") {
      std::printf(kUsage, invocation.program.c_str());
      return 0;
    }
    if (arg == "--json") {
      json = true;
      continue;
    }
    std::string flag(arg), value;
    if (auto eq = flag.find('='); eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag.resize(eq);
    } else if (i + 1 < args.size() && std::strncmp(args[i + 1], "--", 2) != 0) {
      value = args[++i];
    } else if (flag.rfind("--", 0) == 0 && flag != "--json") {
      std::fprintf(stderr, "doctor: %s needs a value\n", flag.c_str());
      std::fprintf(stderr, kUsage, invocation.program.c_str());
      return 2;
    }
    if (Status s = ApplyFlag(flag, value, &config); !s.ok()) {
      std::fprintf(stderr, "doctor: %s\n", s.error().message().c_str());
      std::fprintf(stderr, kUsage, invocation.program.c_str());
      return 2;
    }
  }
  auto checks = driver::CheckHost(config);
  std::string out = json ? driver::HostChecksJson(checks) : driver::HostChecksTable(checks);
  std::fputs(out.c_str(), stdout);
  return driver::HostReady(checks) ? 0 : 1;
}

}  // namespace

extern const Command kDoctorCommand = {"doctor", "[--json] [flags]",
                                       "check whether this host can run microVMs, with a fix per problem",
                                       RunDoctor};

}  // namespace nfc::cli
