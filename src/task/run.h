// `nomad-driver-firecracker run IMAGE [-- CMD...]`: one task through the same Manager code path Nomad uses
// (pull, boot, stream output, exit code), with this process playing Nomad's part: it creates the log FIFOs
// and reads them like logmon, calls StartTask, WaitTask, StopTask on Ctrl-C, and DestroyTask at the end.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/flags.h"

namespace nfc::task {

struct RunOptions {
  std::string image;
  std::vector<std::string>
      command;  // after "--": replaces the image's CMD (entrypoint kept), like docker run
  std::map<std::string, std::string> env;
  std::string backend = "auto";
  int64_t memory_mib = 0;
  int vcpus = 0;
  std::string data_dir;  // empty: the plugin default, or $NFC_DATA_DIR
  std::string kernel;    // empty: installed guest kernel, else the build tree's
  std::string initrd;
  std::string firecracker_path;  // empty: the plugin default ("firecracker" from PATH)
  std::string qemu_path;         // empty: the plugin default ("qemu-system-x86_64" from PATH)
  std::vector<std::string> insecure_registries;
  std::string ca_file;      // empty: the plugin default (the system store only)
  bool timings = false;     // print the start-up breakdown on stderr
  bool warm_start = false;  // plugin option warm_start: restore a template; after a cold start, build one
  bool template_only =
      false;           // build the warm-start template a run would restore, print its key, run nothing
  bool quiet = false;  // no progress lines
};

// Returns the workload's exit code (128+signal when killed); 125 when the task could not run.
int RunImage(const RunOptions& options, const std::string& program_path);

// The flags of `run`, writing into `options`: the parser's table and the source of `run --help`.
std::vector<flags::Flag> RunFlags(RunOptions* options);

// Parses the command's arguments (after "run"); kHelp for --help/-h. An InvalidArgument error names the flag
// and the value that are wrong, or what is missing.
Result<flags::Outcome> ParseRunArgs(const std::vector<std::string>& args, RunOptions* options);

}  // namespace nfc::task
