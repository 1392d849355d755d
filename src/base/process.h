// Starting and identifying child processes without leaking descriptors.
//
// Spawn() is the one way the project starts programs (VMMs, shims, helpers): every fd not explicitly passed
// is closed in the child, stdio defaults to /dev/null (a child must never inherit the plugin's stdout/stderr,
// which the Nomad agent waits on), exec failures come back as errors, and only async-signal-safe calls run
// between fork and exec. A ProcessIdentity (pid + kernel start time) survives our own restarts and guards
// against pid reuse.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"

namespace nfc {

struct SpawnOptions {
  std::vector<std::string> argv;                // argv[0] is the program; a path or a name found in PATH
  std::optional<std::vector<std::string>> env;  // nullopt: inherit ours
  int stdin_fd = -1;                            // -1: /dev/null
  int stdout_fd = -1;                           // -1: /dev/null
  int stderr_fd = -1;                           // -1: /dev/null
  std::vector<std::pair<int, int>> extra_fds;   // {fd in parent, fd number in child}
  bool new_session = false;                     // setsid(): detach from our session and process group
  std::string cwd;                              // empty: inherit
  int parent_death_signal = 0;                  // PR_SET_PDEATHSIG; 0 = none
  std::string netns_path;                       // non-empty: run in this network namespace
  std::vector<std::string> join_cgroups;  // cgroup.procs files the child writes its pid into before exec
};

struct Child {
  pid_t pid = -1;
  UniqueFd pidfd;  // may be invalid on kernels without pidfd_open
};

Result<Child> Spawn(const SpawnOptions& options);

// The kernel's start time of pid in clock ticks since boot (field 22 of /proc/<pid>/stat).
Result<unsigned long long> ProcessStartTime(pid_t pid);

// A process as recorded on disk: matches only while the same process (not a reused pid) is alive.
struct ProcessIdentity {
  pid_t pid = -1;
  unsigned long long start_time = 0;
  bool IsAlive() const;
};
Result<ProcessIdentity> IdentifyProcess(pid_t pid);

Result<UniqueFd> PidfdOpen(pid_t pid);

// Runs a helper program (mke2fs, e2fsck, ...) to completion with its stderr captured (options.stderr_fd is
// replaced). OK when it exits 0; otherwise an error naming the program, how it ended and the first 4 KiB it
// printed on stderr. The code is kResourceExhausted when that output reports ENOSPC (a full disk may free up,
// so a retry can succeed), else kInternal.
Status RunToCompletion(SpawnOptions options);

// waitpid() that retries on EINTR; returns the raw wait status.
Result<int> WaitForExit(pid_t pid);
// Describes a wait status: "exit status 3", "killed by signal 9 (SIGKILL)".
std::string DescribeWaitStatus(int status);

}  // namespace nfc
