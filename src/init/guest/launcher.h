// Starting the workload and exec'd commands inside the guest: own session and process group, credentials from
// an Identity, stdio from pipes or a pseudo-terminal, optionally placed in a cgroup before exec. nfc::Spawn
// does not set credentials or controlling terminals, hence this launcher; it keeps Spawn's rules (only
// async-signal-safe calls between fork and exec, exec errors reported back through a close-on-exec pipe).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "init/guest/identity.h"

namespace nfc::init::guest {

inline constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

struct LaunchOptions {
  std::vector<std::string> argv;
  std::string executable;  // resolved path (LookPath)
  std::vector<std::string> env;
  std::string working_dir = "/";
  Identity identity;
  int stdin_fd = -1;  // -1: /dev/null
  int stdout_fd = -1;
  int stderr_fd = -1;
  std::string tty_path;      // when set: the pty slave becomes stdio and the controlling terminal
  int cgroup_procs_fd = -1;  // when >= 0: the child joins this cgroup before exec
};

struct Launched {
  pid_t pid = -1;
  uint64_t execve_ns = 0;  // CLOCK_MONOTONIC taken in the child right before execve
};

// Errors carry the shell exit code convention in the message's code: kNotFound (127) / kPermissionDenied
// (126).
Result<Launched> Launch(const LaunchOptions& options);

// PATH lookup the way a shell does it, in the image's PATH (from env, else kDefaultPath). A name containing
// '/' is used as is.
Result<std::string> LookPath(const std::string& name, const std::vector<std::string>& env);

// 127 for kNotFound, 126 for kPermissionDenied, else 125 (init could not run it for another reason).
int ExitCodeForLaunchError(const Error& error);

// Env as the workload sees it: PATH defaulted, HOME from the identity, HOSTNAME when given, TERM for a TTY.
std::vector<std::string> FinalizeEnv(std::vector<std::string> env, const Identity& id,
                                     const std::string& hostname, bool tty);

}  // namespace nfc::init::guest
