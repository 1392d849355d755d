// `nomad-driver-firecracker run IMAGE [-- CMD...]`: one task through the same Manager code path Nomad uses
// (pull, boot, stream output, exit code), with this process playing Nomad's part: it creates the log FIFOs
// and reads them like logmon, calls StartTask, WaitTask, StopTask on Ctrl-C, and DestroyTask at the end.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "base/error.h"

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
  bool timings = false;  // print the start-up breakdown on stderr
  bool quiet = false;    // no progress lines
};

// Returns the workload's exit code (128+signal when killed); 125 when the task could not run.
int RunImage(const RunOptions& options, const std::string& program_path);

// Parses the command's arguments; an InvalidArgument error names the argument that is wrong or missing.
Status ParseRunArgs(const std::vector<std::string>& args, RunOptions* options);

}  // namespace nfc::task
