// `ps`: the microVMs of a data directory, whoever started them (the plugin for Nomad, or `run`).
#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/flags.h"
#include "cli/command.h"
#include "task/inventory.h"

namespace nfc::cli {
namespace {

std::string Age(int64_t started_unix_nanos) {
  if (started_unix_nanos <= 0) return "-";
  auto now = std::chrono::system_clock::now().time_since_epoch();
  int64_t s =
      (std::chrono::duration_cast<std::chrono::nanoseconds>(now).count() - started_unix_nanos) / 1000000000;
  if (s < 0) s = 0;
  char buf[32];
  if (s < 120) {
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  } else if (s < 7200) {
    std::snprintf(buf, sizeof buf, "%lldm", static_cast<long long>(s / 60));
  } else if (s < 172800) {
    std::snprintf(buf, sizeof buf, "%lldh", static_cast<long long>(s / 3600));
  } else {
    std::snprintf(buf, sizeof buf, "%lldd", static_cast<long long>(s / 86400));
  }
  return buf;
}

struct PsOptions {
  std::string data_dir = DefaultDataDir();
  bool json = false;
};

std::vector<flags::Flag> PsFlags(PsOptions* o) {
  return {
      {"--data-dir", "", "DIR",
       "the plugin's data directory (plugin option data_dir) whose task directories to list. Default "
       "$NFC_DATA_DIR, else /var/lib/nomad-firecracker, the plugin's.",
       flags::NonEmpty(&o->data_dir, "a directory")},
      {"--json", "", "",
       "print a JSON array instead of the table, one object per task with every field (task_id, dir, state, "
       "result, backend, vcpus, memory_mib, image, image_digest, shim_pid, vmm_pid, guest_boot_id, network, "
       "address, started_at_unix_nanos).",
       [o](const std::string&) -> Status {
         o->json = true;
         return Ok();
       }},
  };
}

std::string PsHelp(std::string_view program, std::span<const std::string> /*topic*/) {
  PsOptions unused;
  return "usage: " + std::string(program) + " ps [flags]\n\n" +
         flags::Paragraph(
             "Lists the task microVMs of a data directory, live or exited, whoever started them (the plugin "
             "for Nomad, or `run`): task id, state (with the exit result), backend, vCPUs, memory, age, the "
             "shim's pid, the guest's address and the image. A task is named in `logs` by its id, a prefix "
             "of "
             "its allocation id (4 characters or more) or its task name. Exit code 0, 1 when the data "
             "directory cannot be read, 2 for a bad command line.") +
         "\nFlags:\n" + flags::Describe(PsFlags(&unused));
}

std::vector<std::string> PsFlagNames(std::span<const std::string> /*topic*/) {
  PsOptions unused;
  return flags::Names(PsFlags(&unused));
}

int RunPs(const Invocation& invocation) {
  PsOptions options;
  std::vector<std::string> positional;
  auto parsed = flags::Parse(PsFlags(&options), Args(invocation), &positional);
  if (!parsed.ok()) return UsageError(invocation, "ps", parsed.error().message());
  if (*parsed == flags::Outcome::kHelp) return PrintHelp(PsHelp(invocation.program, {}));
  if (!positional.empty()) {
    return UsageError(invocation, "ps",
                      "unexpected argument \"" + positional[0] + "\" (ps takes only flags)");
  }
  const std::string& data_dir = options.data_dir;
  const bool json = options.json;
  auto tasks = task::ListTasks(data_dir);
  if (!tasks.ok()) {
    std::fprintf(stderr, "ps: %s\n", tasks.error().message().c_str());
    return 1;
  }
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& t : *tasks) {
      const auto& s = t.driver_state;
      out.push_back({{"task_id", t.task_id},
                     {"dir", t.dir},
                     {"state", t.state},
                     {"result", t.result},
                     {"backend", s.backend},
                     {"vcpus", s.vcpus},
                     {"memory_mib", s.memory_mib},
                     {"image", s.image_reference},
                     {"image_digest", s.image_digest},
                     {"shim_pid", s.shim.pid},
                     {"vmm_pid", t.vmm_pid},
                     {"guest_boot_id", t.guest_boot_id},
                     {"network", s.network_mode},
                     {"address", s.address},
                     {"started_at_unix_nanos", s.started_at_unix_nanos}});
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("%-44s %-9s %-7s %5s %7s %6s %7s %-15s %s\n", "TASK", "STATE", "BACKEND", "VCPUS", "MEM_MIB",
              "AGE", "SHIM", "ADDRESS", "IMAGE");
  for (const auto& t : *tasks) {
    const auto& s = t.driver_state;
    std::string id = t.task_id.empty() ? t.dir.substr(t.dir.rfind('/') + 1) : t.task_id;
    std::string state = t.state == "exited" && !t.result.empty() ? t.state + " (" + t.result + ")" : t.state;
    std::printf("%-44s %-9s %-7s %5d %7lld %6s %7d %-15s %s\n", id.c_str(), state.c_str(),
                s.backend.empty() ? "-" : s.backend.c_str(), s.vcpus, static_cast<long long>(s.memory_mib),
                Age(s.started_at_unix_nanos).c_str(), s.shim.pid > 0 ? s.shim.pid : 0,
                s.address.empty() ? "-" : s.address.c_str(),
                s.image_reference.empty() ? "-" : s.image_reference.c_str());
  }
  return 0;
}

}  // namespace

extern const Command kPsCommand = {
    "ps",  "[flags]", "list the task microVMs of a data directory, live or exited",
    RunPs, PsHelp,    PsFlagNames};

}  // namespace nfc::cli
