// `logs TASK`: the VM's side of a task — its serial console (guest kernel and nomad-init), the task shim's
// log, or the VMM's log. The workload's own stdout/stderr belong to Nomad (`nomad alloc logs`).
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "cli/command.h"
#include "driver/plugin_config.h"
#include "shim/task_dir.h"
#include "task/inventory.h"

namespace nfc::cli {
namespace {

volatile sig_atomic_t interrupted = 0;

int Usage(const Invocation& invocation) {
  std::fprintf(stderr, "usage: %s logs [--data-dir DIR] [--console | --shim | --vmm] [-f] TASK\n",
               invocation.program.c_str());
  return 2;
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
  std::string data_dir(driver::kDefaultDataDir), which = "console", query;
  bool follow = false;
  for (size_t i = 0; i < invocation.args.size(); i++) {
    std::string a = invocation.args[i];
    if (a == "--console" || a == "--shim" || a == "--vmm") {
      which = a.substr(2);
    } else if (a == "-f" || a == "--follow") {
      follow = true;
    } else if (a == "--data-dir" && i + 1 < invocation.args.size()) {
      data_dir = invocation.args[++i];
    } else if (!a.empty() && a[0] != '-' && query.empty()) {
      query = a;
    } else {
      std::fprintf(stderr, "logs: unexpected argument \"%s\"\n", a.c_str());
      return Usage(invocation);
    }
  }
  if (query.empty()) return Usage(invocation);
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

extern const Command kLogsCommand = {"logs", "[--console | --shim | --vmm] [-f] TASK",
                                     "print a task VM's console (guest kernel, nomad-init), shim or VMM log",
                                     RunLogs};

}  // namespace nfc::cli
