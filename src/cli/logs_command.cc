// `logs TASK`: the VM's side of a task — its serial console (guest kernel and nomad-init), the task shim's
// log, or the VMM's log. The workload's own stdout/stderr belong to Nomad (`nomad alloc logs`).
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "base/flags.h"
#include "cli/command.h"
#include "shim/task_dir.h"
#include "task/inventory.h"

namespace nfc::cli {
namespace {

volatile sig_atomic_t interrupted = 0;

struct LogsOptions {
  std::string data_dir = DefaultDataDir();
  std::string which = "console";
  bool follow = false;
};

std::function<Status(const std::string&)> Which(LogsOptions* o, const char* log) {
  return [o, log](const std::string&) -> Status {
    o->which = log;
    return Ok();
  };
}

std::vector<flags::Flag> LogsFlags(LogsOptions* o) {
  return {
      {"--console", "", "", "the VM's serial console: guest kernel messages and nomad-init's (the default).",
       Which(o, "console")},
      {"--shim", "", "", "the task shim's log (VMM start, guest connection, exit record).", Which(o, "shim")},
      {"--vmm", "", "", "the VMM's own log (Firecracker's or QEMU's).", Which(o, "vmm")},
      {"--follow", "-f", "", "keep printing what is appended until Ctrl-C or the task directory is removed.",
       [o](const std::string&) -> Status {
         o->follow = true;
         return Ok();
       }},
      {"--data-dir", "", "DIR",
       "the plugin's data directory (plugin option data_dir) holding the task. Default $NFC_DATA_DIR, else "
       "/var/lib/nomad-firecracker, the plugin's.",
       flags::NonEmpty(&o->data_dir, "a directory")},
  };
}

std::string LogsHelp(std::string_view program, std::span<const std::string> /*topic*/) {
  LogsOptions unused;
  return "usage: " + std::string(program) + " logs [flags] TASK\n\n" +
         flags::Paragraph(
             "Prints the VM's side of a task: its serial console, the task shim's log or the VMM's log. The "
             "workload's own stdout and stderr belong to Nomad (`nomad alloc logs`) or to `run`. TASK is a "
             "task id, a task directory's name, a prefix of the allocation id (4 characters or more) or the "
             "task name, as `ps` lists them. The last of --console, --shim and --vmm given wins. Exit code "
             "0, "
             "1 when the task or its log is not there, 2 for a bad command line.") +
         "\nFlags:\n" + flags::Describe(LogsFlags(&unused));
}

std::vector<std::string> LogsFlagNames(std::span<const std::string> /*topic*/) {
  LogsOptions unused;
  return flags::Names(LogsFlags(&unused));
}

// Copies `path` from `offset` to stdout; returns the new offset.
std::streamoff Copy(const std::string& path, std::streamoff offset) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return offset;
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  if (size < offset) offset = 0;  // rotated or truncated (the console log is bounded)
  in.seekg(offset);
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    std::fwrite(buf, 1, static_cast<size_t>(in.gcount()), stdout);
    offset += in.gcount();
  }
  std::fflush(stdout);
  return offset;
}

int RunLogs(const Invocation& invocation) {
  LogsOptions options;
  std::vector<std::string> positional;
  auto parsed = flags::Parse(LogsFlags(&options), Args(invocation), &positional);
  if (!parsed.ok()) return UsageError(invocation, "logs", parsed.error().message());
  if (*parsed == flags::Outcome::kHelp) return PrintHelp(LogsHelp(invocation.program, {}));
  if (positional.empty()) return UsageError(invocation, "logs", "missing TASK (a task id or name, see ps)");
  if (positional.size() > 1) {
    return UsageError(invocation, "logs",
                      "unexpected argument \"" + positional[1] + "\" after TASK \"" + positional[0] + "\"");
  }
  const std::string& data_dir = options.data_dir;
  const std::string& which = options.which;
  const std::string& query = positional[0];
  const bool follow = options.follow;
  auto tasks = task::ListTasks(data_dir);
  if (!tasks.ok()) {
    std::fprintf(stderr, "logs: %s\n", tasks.error().message().c_str());
    return 1;
  }
  auto task = task::FindTask(*tasks, query);
  if (!task.ok()) {
    std::fprintf(stderr, "logs: %s\n", task.error().message().c_str());
    return 1;
  }
  shim::TaskDir dir{task->dir};
  std::string path = which == "shim"  ? dir.ShimLog()
                     : which == "vmm" ? dir.root + "/vmm.log"
                                      : dir.ConsoleLog();
  if (::access(path.c_str(), R_OK) != 0 && !follow) {
    std::fprintf(stderr, "logs: %s has no %s log yet (%s)\n", query.c_str(), which.c_str(), path.c_str());
    return 1;
  }
  std::streamoff offset = Copy(path, 0);
  if (!follow) return 0;
  struct sigaction sa {};
  sa.sa_handler = [](int) { interrupted = 1; };
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  // Until interrupted, or the task directory is removed (DestroyTask).
  while (!interrupted && ::access(dir.root.c_str(), F_OK) == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    offset = Copy(path, offset);
  }
  return 0;
}

}  // namespace

extern const Command kLogsCommand = {
    "logs",  "[flags] TASK", "print a task VM's console (guest kernel, nomad-init), shim or VMM log",
    RunLogs, LogsHelp,       LogsFlagNames};

}  // namespace nfc::cli
