// `run IMAGE [-- CMD...]`: pull, boot, stream output, exit with the workload's code (src/task/run.h).
#include <string>
#include <vector>

#include "cli/command.h"
#include "task/run.h"

namespace nfc::cli {
namespace {

std::string RunHelp(std::string_view program, std::span<const std::string> /*topic*/) {
  task::RunOptions unused;
  return "usage: " + std::string(program) + " run [flags] IMAGE [-- CMD [ARG...]]\n\n" +
         flags::Paragraph(
             "Runs IMAGE as a microVM the way the plugin runs a Nomad task, through the same code: pull and "
             "convert into the data directory's image cache, boot, copy the workload's stdout and stderr to "
             "this process's, then stop and remove the VM. IMAGE is a registry reference (alpine:3.19), "
             "oci:DIR[:TAG] (an OCI image layout) or docker-archive:FILE[:NAME:TAG]. CMD replaces the "
             "image's "
             "CMD; its ENTRYPOINT is kept. Ctrl-C stops the workload as Nomad would (SIGTERM, then the VM "
             "after 5 s). Progress lines (\"==> ...\") go to stderr; NFC_LOG_LEVEL=info adds the library's "
             "logs. Needs root (TAP devices, cgroups, the VMM sandbox).") +
         "\n" +
         flags::Paragraph(
             "Exit code: the workload's (128+N when a signal N killed it), 125 when it could not start, 2 "
             "for a bad command line.") +
         "\nFlags:\n" + flags::Describe(task::RunFlags(&unused));
}

std::vector<std::string> RunFlagNames(std::span<const std::string> /*topic*/) {
  task::RunOptions unused;
  return flags::Names(task::RunFlags(&unused));
}

int RunRun(const Invocation& invocation) {
  task::RunOptions options;
  auto parsed = task::ParseRunArgs(Args(invocation), &options);
  if (!parsed.ok()) return UsageError(invocation, "run", parsed.error().message());
  if (*parsed == flags::Outcome::kHelp) return PrintHelp(RunHelp(invocation.program, {}));
  return task::RunImage(options, invocation.program);
}

}  // namespace

extern const Command kRunCommand = {"run",
                                    "[flags] IMAGE [-- CMD...]",
                                    "run an OCI image as a microVM and print its output",
                                    RunRun,
                                    RunHelp,
                                    RunFlagNames};

}  // namespace nfc::cli
