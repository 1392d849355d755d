// nomad-driver-firecracker: a Nomad task-driver plugin when a Nomad client starts it (magic cookie in the
// environment), a command-line tool otherwise. main() is in main.cc, so cli_test can link the rest.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "base/flags.h"
#include "cli/command.h"
#include "cli/task_manager_factory.h"
#include "driver/driver.h"
#include "driver/naming.h"
#include "driver/plugin_config.h"
#include "driver/rpc/services.h"
#include "plugin/handshake.h"

namespace nfc::cli {

#define NFC_CLI_COMMAND(symbol) extern const Command symbol;
#include "cli/commands.inc"
#undef NFC_CLI_COMMAND

namespace {

#define NFC_CLI_COMMAND(symbol) &(symbol),
constexpr const Command* kCommands[] = {
#include "cli/commands.inc"
};
#undef NFC_CLI_COMMAND

std::string BaseName(std::string_view path) {
  size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

}  // namespace

std::span<const Command* const> Commands() {
  return kCommands;
}

void PrintUsage(int fd, std::string_view program) {
  const std::string file = BaseName(program.empty() ? "nomad-driver-firecracker" : program);
  const std::string driver_name = driver::DriverNameFromPath(file);
  std::string text;
  text += file + " " + std::string(driver::PluginVersion()) +
          ": a Nomad task driver that runs OCI images as microVMs (Firecracker, or QEMU microvm).\n\n";
  text +=
      "This program is a Nomad plugin: the Nomad client agent starts it; you do not run it as a service.\n";
  text += "To install it:\n";
  text += "  1. Copy the binary (only the file) into the agent's plugin_dir (default: <data_dir>/plugins).\n";
  text += "  2. Add a plugin block named after the file to the agent configuration:\n\n";
  text += "       plugin \"" + file + "\" {\n";
  text += "         config {\n";
  text += "           # every option is optional, e.g.\n";
  text += "           # kernel_path = \"/usr/lib/nomad-firecracker/guest/vmlinux\"\n";
  text += "           # backend     = \"auto\"   # auto | firecracker | qemu\n";
  text += "         }\n";
  text += "       }\n\n";
  text += "  3. Restart the agent. Jobs use:  driver = \"" + driver_name + "\"\n";
  text += "     (the driver name is this file's name without a leading \"nomad-driver-\").\n\n";
  text += "Commands:\n";
  for (const Command* c : kCommands) {
    // Appended, not `" " + std::string(...)`: that trips GCC 12's -Wrestrict false positive at -O3.
    std::string synopsis(c->name);
    if (!c->usage.empty()) synopsis.append(" ").append(c->usage);
    if (synopsis.size() < 32) synopsis.resize(32, ' ');
    text += "  " + synopsis + " " + std::string(c->summary) + "\n";
  }
  text += "  help [COMMAND]                   show this text, or a command's help\n\n";
  text += flags::Paragraph(
      "\"" + file + " COMMAND --help\" (or \"help COMMAND\") shows a command's flags. " +
      "Commands that use a data directory take --data-dir DIR (default $NFC_DATA_DIR, else " +
      std::string(driver::kDefaultDataDir) +
      ", the plugin's). Exit codes: 0 success, 1 failure, 2 bad command line; run exits "
      "with the workload's code (125 when it could not start).");
  (void)!::write(fd, text.data(), text.size());
}

std::string DefaultDataDir() {
  const char* env = std::getenv("NFC_DATA_DIR");
  return env && *env ? env : std::string(driver::kDefaultDataDir);
}

std::vector<std::string> Args(const Invocation& invocation) {
  return {invocation.args.begin(), invocation.args.end()};
}

int PrintHelp(const std::string& text) {
  std::fputs(text.c_str(), stdout);
  return 0;
}

int UsageError(const Invocation& invocation, std::string_view command, std::string_view message) {
  return flags::UsageError(command, message, invocation.program + " " + std::string(command));
}

namespace {

const Command* FindCommand(std::string_view name) {
  for (const Command* c : kCommands) {
    if (c->name == name) return c;
  }
  return nullptr;
}

int UnknownCommand(const std::string& program, std::string_view name) {
  std::fprintf(stderr, "%s: unknown command \"%.*s\"\nsee: %s --help\n", BaseName(program).c_str(),
               static_cast<int>(name.size()), name.data(), program.c_str());
  return flags::kUsageExit;
}

// `help [COMMAND [TOPIC...]]`.
int Help(const std::string& program, std::span<char* const> args) {
  if (args.empty()) {
    PrintUsage(STDOUT_FILENO, program);
    return 0;
  }
  const Command* c = FindCommand(args[0]);
  if (!c) return UnknownCommand(program, args[0]);
  std::vector<std::string> topic(args.begin() + 1, args.end());
  return PrintHelp(c->help(program, topic));
}

}  // namespace

int Main(int argc, char** argv) {
  if (plugin::LaunchedByPluginHost(plugin::ProcessEnv())) {
    return driver::rpc::ServePlugin(argc, argv, PluginTaskManagerFactory());
  }
  const std::string program = argc > 0 ? argv[0] : "nomad-driver-firecracker";
  if (argc < 2) {
    PrintUsage(STDOUT_FILENO, program);
    return 0;
  }
  std::string_view name = argv[1];
  std::span<char* const> rest(argv + 2, static_cast<size_t>(argc - 2));
  if (name == "help" || name == "-h" || name == "--help") return Help(program, rest);
  if (name == "--version" || name == "-v") name = "version";
  const Command* c = FindCommand(name);
  if (!c) return UnknownCommand(program, name);
  return c->run(Invocation{program, rest});
}

}  // namespace nfc::cli
