// The command table of the nomad-driver-firecracker CLI (what a person gets when no plugin host started us).
//
// To add a command: write `src/cli/<name>_command.cc` defining
//   extern const nfc::cli::Command kFooCommand = {"foo", "ARGS", "one-line summary", RunFoo};
// (picked up by the build automatically) and add one line `NFC_CLI_COMMAND(kFooCommand)` to commands.inc.
// A command gets the arguments after its name and returns the process exit code (0 ok, 1 failure, 2 usage).
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace nfc::cli {

struct Invocation {
  std::string program;          // argv[0]
  std::span<char* const> args;  // after the command name
};

struct Command {
  std::string_view name;
  std::string_view usage;    // argument synopsis, e.g. "pull IMAGE | ls | rm IMAGE | prune"
  std::string_view summary;  // one line
  int (*run)(const Invocation& invocation);
};

// Every registered command, in commands.inc order.
std::span<const Command* const> Commands();

// Prints the top-level usage (what the program is, how to install it as a plugin, the commands) to `fd`.
void PrintUsage(int fd, std::string_view program);

}  // namespace nfc::cli
