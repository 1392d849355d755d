// AgentClient: the host side of the guest control channel (docs/guest-protocol.md).
//
// One AgentClient owns one connected byte stream to nomad-init's guest role: a unix socket to QEMU's
// virtio-serial chardev, a Firecracker hybrid-vsock UDS after the CONNECT handshake (base/unix_socket.h
// DialHybridVsock), or the unix socket of a test. Connect() performs the hello/version negotiation and then
// runs one reader thread that sorts incoming messages: log chunks and the exit result queue up for the
// caller; replies wake the request that is waiting for them; exec output goes to its GuestExecClient.
//
// Exactly-once logs: the caller reads chunks with NextLog(), writes them where they belong, then acknowledges
// with AckLog(). After a disconnect the caller connects again with Options::resume = the offsets it
// acknowledged (or persisted), and the guest resends from there. Nothing is dropped in the guest before it is
// acknowledged.
//
// Thread-safety: every method may be called from any thread. Calls fail with kUnavailable once the connection
// is lost; the object is then only good for reading what was already queued.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/exit_result.h"
#include "base/unique_fd.h"

namespace nfc::guest::v1 {
class FileBatch;
}

namespace nfc::guest {

enum class LogStream { kStdout = 1, kStderr = 2 };

struct LogOffsets {
  uint64_t stdout_offset = 0;
  uint64_t stderr_offset = 0;
  uint64_t& at(LogStream s) { return s == LogStream::kStdout ? stdout_offset : stderr_offset; }
  uint64_t at(LogStream s) const { return s == LogStream::kStdout ? stdout_offset : stderr_offset; }
};

// The guest init's phase as the wire carries it (agent.proto Phase); init/guest/guest_init.h mirrors the
// names.
enum class GuestPhase {
  kUnknown = 0,
  kBooting,
  kRunning,
  kStopping,
  kExited,
  kFailed,
  kShuttingDown,
  kAwaitingTask,  // a warm-start template waiting for its task (DeliverTask)
};
std::string_view GuestPhaseName(GuestPhase phase);

// CLOCK_MONOTONIC nanoseconds of the guest; 0 = not reached.
struct BootTimes {
  uint64_t init_start_ns = 0;
  uint64_t config_loaded_ns = 0;
  uint64_t root_mounted_ns = 0;
  uint64_t network_up_ns = 0;
  uint64_t workload_execve_ns = 0;
  uint64_t workload_exit_ns = 0;
};

// How the workload (or an exec'd command) ended: the project's one exit type. The guest fills exit_code,
// signal, oom_killed and, when it could not start the workload, err; the host stamps completed_at.
using ExitResult = nfc::ExitResult;

// The guest's report of the workload's end: the result, and where its log streams end (the host records the
// exit only after the logs up to there are written).
struct ExitReport : ExitResult {
  LogOffsets log_end;
};

struct GuestStatus {
  GuestPhase phase = GuestPhase::kUnknown;
  std::string error;
  BootTimes boot;
  std::optional<ExitReport> exit;
  LogOffsets log_acked;
  LogOffsets log_written;
  int workload_pid = 0;
  std::string task_id;
  uint64_t boot_id = 0;  // 0 from a guest that does not report it
};

struct GuestStats {
  uint64_t timestamp_ns = 0;
  uint64_t cpu_user_usec = 0;
  uint64_t cpu_system_usec = 0;
  uint64_t cpu_total_usec = 0;
  uint64_t memory_rss_bytes = 0;
  uint64_t memory_usage_bytes = 0;
  uint64_t memory_cache_bytes = 0;
  uint64_t memory_total_bytes = 0;
  uint64_t memory_available_bytes = 0;
  uint32_t pids = 0;
  bool from_cgroup = false;
};

struct LogChunk {
  LogStream stream = LogStream::kStdout;
  uint64_t offset = 0;  // offset of data[0] in its stream
  std::string data;
};

struct ExecOptions {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // "KEY=value", over the workload's env
  std::string working_dir;
  std::string user;
  bool tty = false;
  uint32_t rows = 24;
  uint32_t cols = 80;
};

// The host's handle on one command started with AgentClient::Exec. Output of a TTY session arrives as
// kStdout.
class GuestExecClient {
 public:
  virtual ~GuestExecClient() = default;
  virtual uint64_t id() const = 0;
  virtual int pid() const = 0;
  virtual Status Write(std::string_view data) = 0;
  virtual Status CloseStdin() = 0;
  virtual Status Resize(uint32_t rows, uint32_t cols) = 0;
  virtual Status Signal(int signal) = 0;
  // The next output chunk; nullopt once the command exited and all output was read. kTimeout on timeout.
  virtual Result<std::optional<LogChunk>> Read(std::chrono::milliseconds timeout) = 0;
  // Waits for the exit (output not yet read stays readable). exit_code follows ExitResult's convention.
  virtual Result<ExitResult> Wait(std::chrono::milliseconds timeout) = 0;
};

class AgentClient {
 public:
  struct Options {
    LogOffsets resume;  // next byte wanted per stream; everything below counts as acknowledged
    std::string client_name = "nomad-driver-firecracker";
    std::chrono::milliseconds handshake_timeout{10000};
    std::chrono::milliseconds request_timeout{10000};
  };

  // Says hello on fd and waits for the guest's answer. On a byte-stream port (virtio-serial) the hello is
  // resent every second until answered, so a guest whose framing was cut mid-frame resynchronises.
  static Result<std::unique_ptr<AgentClient>> Connect(UniqueFd fd, const Options& options);

  // Transports. Both return a connected, blocking, close-on-exec socket.
  static Result<UniqueFd> DialUnix(const std::string& path, std::chrono::milliseconds timeout);

  virtual ~AgentClient() = default;

  // From the hello exchange.
  virtual uint32_t protocol_version() const = 0;
  virtual std::string init_version() const = 0;
  virtual uint64_t boot_id() const = 0;
  virtual GuestStatus initial_status() const = 0;
  virtual bool connected() const = 0;

  // Logs, in order per stream, starting at Options::resume. nullopt on timeout; kUnavailable after the
  // connection is gone and everything queued was read.
  virtual Result<std::optional<LogChunk>> NextLog(std::chrono::milliseconds timeout) = 0;
  // Everything in stream below offset was delivered; the guest frees it.
  virtual Status AckLog(LogStream stream, uint64_t offset) = 0;
  // What the caller acknowledged so far (resume offsets for the next connection).
  virtual LogOffsets acked() const = 0;

  // Blocks until the guest reports the workload's exit (or init's failure to start it).
  virtual Result<ExitReport> WaitExit(std::chrono::milliseconds timeout) = 0;
  // The host has recorded the exit result; the guest may shut down once logs are acked too.
  virtual Status AckExit() = 0;

  virtual Result<GuestStatus> QueryStatus() = 0;
  virtual Result<GuestStats> QueryStats() = 0;
  // Sends signal to the workload's process group (or only its main process).
  virtual Status Signal(int signal, bool process_only = false) = 0;
  // Graceful stop: the stop signal (0 = the task's), then SIGKILL after kill_timeout (0 = the task's).
  virtual Status Shutdown(int signal = 0, std::chrono::milliseconds kill_timeout = {}) = 0;
  virtual Result<std::unique_ptr<GuestExecClient>> Exec(const ExecOptions& options) = 0;

  // Task directories (docs/task-files.md). SendFiles applies one batch in the guest and waits for its answer
  // (an error names the path); FilesReady tells the guest the first copy is complete, or, with a non-empty
  // error, that it failed (the workload is then not started).
  virtual Status SendFiles(const ::nfc::guest::v1::FileBatch& batch) = 0;
  virtual Status FilesReady(const std::string& error = {}) = 0;
  // Hands a warm-start template (phase kAwaitingTask) its task: the TaskSpec's JSON, fresh entropy for the
  // guest's RNG (>= 32 bytes) and the host's CLOCK_REALTIME in ns. Returns once the guest accepted it; the
  // guest's boot_id changes (QueryStatus shows the new one).
  virtual Status DeliverTask(const std::string& spec_json, const std::string& entropy,
                             int64_t realtime_unix_ns) = 0;
  // The changes the guest sent from its two-way roots, in order. nullopt on timeout; kUnavailable once the
  // connection is gone and everything queued was read.
  virtual Result<std::optional<::nfc::guest::v1::FileBatch>> NextFileBatch(
      std::chrono::milliseconds timeout) = 0;

  // Closes the connection; the reader thread ends. Idempotent.
  virtual void Close() = 0;
};

}  // namespace nfc::guest
