// Keeps one long-running program alive: the Nomad agent (or, with nomados.debug=shell, a console shell).
//
// The program is restarted when it exits, with exponential back-off (1 s doubling to 30 s; reset once it has
// run for 60 s), so a crash loop neither spins the CPU nor leaves the node without an agent for long. Its
// stdout and stderr go through a pipe that PID 1 pumps to the console and to a size-bounded log file (one
// rotated copy). Stop() sends a signal and ends the restarts; the caller's event loop reaps and reports exits
// via OnExit().
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"

namespace nfc::init::host {

using SupervisorClock = std::chrono::steady_clock;

// Appends to a file, and when it would grow past max_bytes renames it to "<path>.1" (replacing the previous
// copy) and starts a new one. Bounds what the agent's output can take of the data partition.
class BoundedLogFile {
 public:
  BoundedLogFile(std::string path, size_t max_bytes) : path_(std::move(path)), max_bytes_(max_bytes) {}
  Status Write(const char* data, size_t len);
  const std::string& path() const { return path_; }

 private:
  Status Open();
  std::string path_;
  size_t max_bytes_;
  size_t size_ = 0;
  UniqueFd fd_;
};

struct ServiceSpec {
  std::string name;  // for logs: "nomad", "shell"
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::string log_path;  // empty: console only
  size_t log_max_bytes = 16u << 20;
  bool on_console = false;  // stdio is the console itself (interactive shell), not a pipe
  std::chrono::seconds min_backoff{1};
  std::chrono::seconds max_backoff{30};
  std::chrono::seconds stable_after{60};
};

class Supervisor {
 public:
  Supervisor(ServiceSpec spec, int console_fd)
      : spec_(std::move(spec)),
        console_fd_(console_fd),
        log_(spec_.log_path, spec_.log_max_bytes),
        backoff_(spec_.min_backoff) {}

  // Starts the program now (the first time) and arms restarts.
  void Start(SupervisorClock::time_point now);
  // The deadline of a pending restart, or time_point::max().
  SupervisorClock::time_point deadline() const { return restart_at_; }
  void OnDeadline(SupervisorClock::time_point now);
  // The reaper found pid == this->pid() exited with wait status `status`.
  void OnExit(int status, SupervisorClock::time_point now);
  // Copies what is available on the output pipe to console and log file.
  void PumpOutput();
  // Sends sig to the program (its process group too) and, if final, disarms restarts.
  void Signal(int sig, bool final);

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  int output_fd() const { return out_.get(); }
  int starts() const { return starts_; }
  SupervisorClock::time_point started_at() const { return started_at_; }
  const ServiceSpec& spec() const { return spec_; }

 private:
  void Launch(SupervisorClock::time_point now);
  void Emit(const char* data, size_t len);

  ServiceSpec spec_;
  int console_fd_;
  BoundedLogFile log_;
  std::chrono::seconds backoff_;
  pid_t pid_ = -1;
  UniqueFd out_;
  bool stopping_ = false;
  int starts_ = 0;
  SupervisorClock::time_point started_at_{};
  SupervisorClock::time_point restart_at_ = SupervisorClock::time_point::max();
};

}  // namespace nfc::init::host
