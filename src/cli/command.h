// The command table of the nomad-driver-firecracker CLI (what a person gets when no plugin host started us).
//
// To add a command: write `src/cli/<name>_command.cc` defining
//   extern const nfc::cli::Command kFooCommand = {"foo", "ARGS", "one-line summary", RunFoo, FooHelp};
// (picked up by the build automatically) and add one line `NFC_CLI_COMMAND(kFooCommand)` to commands.inc.
// A command gets the arguments after its name and returns the process exit code (0 ok, 1 failure, 2 usage).
// Its flags are a flags::Flag table (base/flags.h): the parser and the help come from it, `<command> --help`
// and `help <command>` print the help, and cli_test checks that the help names every flag of the table.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nfc::cli {

struct Invocation {
  std::string program;          // argv[0]
  std::span<char* const> args;  // after the command name
};

struct Command {
  std::string_view name;
  std::string_view usage;    // argument synopsis, e.g. "[flags] TASK"
  std::string_view summary;  // one line
  int (*run)(const Invocation& invocation);
  // The full help: synopsis, what the command does, every flag with a line each. `topic`: what follows the
  // command's name in `help <command> ...` or before --help (image's sub-command), possibly empty.
  std::string (*help)(std::string_view program, std::span<const std::string> topic);
  // Every flag the command's parser accepts for `topic`, long and short names (for cli_test).
  std::vector<std::string> (*flag_names)(std::span<const std::string> topic);
};

// Every registered command, in commands.inc order.
std::span<const Command* const> Commands();

// Prints the top-level usage (what the program is, how to install it as a plugin, the commands) to `fd`.
void PrintUsage(int fd, std::string_view program);

// The CLI: argv as main() gets it. Returns the exit code.
int Main(int argc, char** argv);

// For the commands. The data directory a command uses without --data-dir: $NFC_DATA_DIR, else the plugin's
// default (driver::kDefaultDataDir).
std::string DefaultDataDir();
// `command`'s arguments as strings.
std::vector<std::string> Args(const Invocation& invocation);
// Prints `text` (a command's help) on stdout; returns 0.
int PrintHelp(const std::string& text);
// Prints "<command>: <message>" and "see: <program> <command> --help" on stderr; returns 2.
int UsageError(const Invocation& invocation, std::string_view command, std::string_view message);

}  // namespace nfc::cli
