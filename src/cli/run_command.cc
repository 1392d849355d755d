// `run IMAGE [-- CMD...]`: pull, boot, stream output, exit with the workload's code (src/task/run.h).
#include <cstdio>
#include <string>
#include <vector>

#include "cli/command.h"
#include "task/run.h"

namespace nfc::cli {
namespace {

int RunRun(const Invocation& invocation) {
  std::vector<std::string> args(invocation.args.begin(), invocation.args.end());
  task::RunOptions options;
  Status parsed = task::ParseRunArgs(args, &options);
  if (!parsed.ok()) {
    std::fprintf(
        stderr,
        "%s\nusage: %s run [--backend auto|firecracker|qemu] [--memory MiB] [--vcpus N] [-e NAME=value]...\n"
        "       [--data-dir DIR] [--kernel PATH] [--initrd PATH] [--firecracker-path PATH] [--qemu-path "
        "PATH]\n"
        "       [--insecure-registry HOST[:PORT]]\n"
        "       [--timings] [--quiet] IMAGE [-- CMD...]\n",
        parsed.error().message().c_str(), invocation.program.c_str());
    return 2;
  }
  return task::RunImage(options, invocation.program);
}

}  // namespace

extern const Command kRunCommand = {"run", "IMAGE [-- CMD...]",
                                    "run an OCI image as a microVM and print its output", RunRun};

}  // namespace nfc::cli
