// `doctor`: whether this host can run microVMs with a given plugin configuration (driver/host_check.h).
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/flags.h"
#include "cli/command.h"
#include "driver/host_check.h"
#include "driver/plugin_config.h"

namespace nfc::cli {
namespace {

struct DoctorOptions {
  driver::PluginConfig config;
  bool json = false;
};

// The plugin options doctor can check, under the names `run` uses for them.
std::vector<flags::Flag> DoctorFlags(DoctorOptions* o) {
  driver::PluginConfig& c = o->config;
  return {
      {"--json", "", "", "print the checks as JSON (name, verdict, detail, fix) instead of the table.",
       [o](const std::string&) -> Status {
         o->json = true;
         return Ok();
       }},
      {"--backend", "", "auto|firecracker|qemu",
       "the VMM to check for (plugin option backend). Default auto: both, either will do.",
       [&c](const std::string& v) -> Status {
         auto b = driver::ParseBackend(v);
         if (!b.ok()) return Error::InvalidArgument("expected auto, firecracker or qemu");
         c.backend = *b;
         return Ok();
       }},
      {"--data-dir", "", "DIR",
       "the plugin's data directory (plugin option data_dir): free space, hard links. Default $NFC_DATA_DIR, "
       "else /var/lib/nomad-firecracker, the plugin's.",
       flags::NonEmpty(&c.data_dir, "a directory")},
      {"--kernel", "", "PATH",
       "the guest kernel (plugin option kernel_path). Default /usr/lib/nomad-firecracker/guest/vmlinux.",
       flags::NonEmpty(&c.kernel_path, "a path")},
      {"--initrd", "", "PATH",
       "the guest initramfs (plugin option initrd_path); \"\" for none. Default "
       "/usr/lib/nomad-firecracker/guest/initramfs.cpio.gz.",
       [&c](const std::string& v) -> Status {
         c.initrd_path = v;  // "" is the plugin option's "no initramfs"
         return Ok();
       }},
      {"--firecracker-path", "", "PATH",
       "the Firecracker binary (plugin option firecracker_path). Default: firecracker from PATH.",
       flags::NonEmpty(&c.firecracker_path, "a path")},
      {"--jailer-path", "", "PATH",
       "Firecracker's jailer (plugin option jailer_path). Default: jailer from PATH.",
       flags::NonEmpty(&c.jailer_path, "a path")},
      {"--jailer", "", "true|false",
       "whether Firecracker runs through its jailer (plugin option jailer). Default: when it is installed.",
       [&c](const std::string& v) -> Status {
         if (v != "true" && v != "false") return Error::InvalidArgument("expected true or false");
         c.jailer = v == "true";
         return Ok();
       }},
      {"--qemu-path", "", "PATH",
       "the QEMU binary (plugin option qemu_path). Default: qemu-system-x86_64 from PATH.",
       flags::NonEmpty(&c.qemu_path, "a path")},
      {"--cgroup-parent", "", "PATH",
       "where the VMMs' cgroups go (plugin option cgroup_parent). Default /nomad-firecracker.",
       flags::NonEmpty(&c.cgroup_parent, "a path")},
  };
}

std::string DoctorHelp(std::string_view program, std::span<const std::string> /*topic*/) {
  DoctorOptions unused;
  return "usage: " + std::string(program) + " doctor [flags]\n\n" +
         flags::Paragraph(
             "Checks this host for the plugin configuration the flags describe (the plugin's defaults "
             "otherwise): KVM (by running a probe guest), Firecracker, its jailer and QEMU with their "
             "versions, the guest kernel and initramfs, cgroups (by creating one with limits), /dev/net/tun, "
             "/dev/vhost-vsock, the data directory (free space, hard links). Prints one line per check with "
             "its verdict and, for a problem, the fix. Exit code 0 when nothing failed, 1 otherwise, 2 for a "
             "bad command line.") +
         "\nFlags:\n" + flags::Describe(DoctorFlags(&unused));
}

std::vector<std::string> DoctorFlagNames(std::span<const std::string> /*topic*/) {
  DoctorOptions unused;
  return flags::Names(DoctorFlags(&unused));
}

int RunDoctor(const Invocation& invocation) {
  DoctorOptions options;
  options.config.data_dir = DefaultDataDir();
  std::vector<std::string> positional;
  auto parsed = flags::Parse(DoctorFlags(&options), Args(invocation), &positional);
  if (!parsed.ok()) return UsageError(invocation, "doctor", parsed.error().message());
  if (*parsed == flags::Outcome::kHelp) return PrintHelp(DoctorHelp(invocation.program, {}));
  if (!positional.empty()) {
    return UsageError(invocation, "doctor",
                      "unexpected argument \"" + positional[0] + "\" (doctor takes only flags)");
  }
  const driver::PluginConfig& config = options.config;
  const bool json = options.json;
  auto checks = driver::CheckHost(config);
  std::string out = json ? driver::HostChecksJson(checks) : driver::HostChecksTable(checks);
  std::fputs(out.c_str(), stdout);
  return driver::HostReady(checks) ? 0 : 1;
}

}  // namespace

extern const Command kDoctorCommand = {
    "doctor",  "[flags]",  "check whether this host can run microVMs, with a fix per problem",
    RunDoctor, DoctorHelp, DoctorFlagNames};

}  // namespace nfc::cli
