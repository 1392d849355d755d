// The guest role of nomad-init: PID 1 inside a task's microVM (or inside a PID + mount namespace for tests).
//
// Run() reads as the list of steps: block signals; on an initramfs mount devtmpfs/proc/sys and load the
// kernel modules; read the TaskSpec; open the control channel; assemble and switch into the root; network;
// start the workload; then serve one event loop (signals, reaping, workload output, control connections, exec
// sessions) until the exit result is acknowledged; then the shared shutdown sequence and reboot. It never
// returns and never exits: every failure becomes a reported exit result (phase FAILED) followed by a reboot.
//
// Single-threaded by design (like tini): all state below is touched only by the loop.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "files/mirror.h"
#include "guest/agent.pb.h"
#include "guest/agent_client.h"
#include "guest/framing.h"
#include "guest/task_spec.h"
#include "init/guest/bringup.h"
#include "init/guest/identity.h"
#include "init/guest/log_buffer.h"

namespace nfc::init::guest {

namespace pb = ::nfc::guest::v1;
using nfc::guest::BootTimes;
using nfc::guest::TaskSpec;

struct GuestArgs {
  uint64_t start_ns = 0;       // taken first thing in main()
  std::string config_path;     // default: /nomad/task.json
  std::string control_socket;  // overrides control.unix_socket (tests)
  bool debug = false;          // nomad.debug on the kernel command line, --debug
};

[[noreturn]] void RunGuest(const GuestArgs& args);

// ---- internals, shared between the guest_*.cc files
// -------------------------------------------------------------

// What an epoll event is about. Its token holds the kind in the top byte and an index below: the listener's
// position, the connection id, the Stream, or exec id << 2 | the session's fd (0 out, 1 err, 2 in).
enum class WatchKind : uint64_t {
  kSignals = 1,
  kListener = 2,
  kConnection = 3,
  kWorkloadOutput = 4,
  kExecFd = 5,
  kFilesWatch = 6  // index: position in file_watchers_
};
constexpr uint64_t WatchToken(WatchKind kind, uint64_t index) {
  return static_cast<uint64_t>(kind) << 56 | index;
}
constexpr WatchKind TokenKind(uint64_t token) {
  return static_cast<WatchKind>(token >> 56);
}
constexpr uint64_t TokenIndex(uint64_t token) {
  return token & ((uint64_t{1} << 56) - 1);
}

struct Connection {
  uint64_t id = 0;
  UniqueFd fd;
  bool serial = false;       // a virtio-serial port: one byte stream across host reconnects
  bool host_present = true;  // serial: false while the host side is disconnected (POLLHUP)
  bool greeted = false;      // a Hello was accepted on the current session
  uint64_t session = 0;      // that Hello's session nonce
  nfc::guest::FrameDecoder decoder;
  std::string out;  // framed bytes not written yet
  size_t out_pos = 0;
  uint64_t sent[3] = {0, 0, 0};  // per Stream: next log offset to send
  bool exit_sent = false;
  uint64_t partial_since_ns = 0;
  uint32_t interest = 0;  // epoll events currently registered (0 = not registered)
  size_t pending() const { return out.size() - out_pos; }
};

// One command exec'd in the guest for the host (its host-side handle is guest::GuestExecClient).
struct GuestExec {
  uint64_t id = 0;
  uint64_t conn_id = 0;
  pid_t pid = -1;
  bool tty = false;
  UniqueFd out;  // stdout pipe or pty master
  UniqueFd err;  // stderr pipe (not for tty)
  UniqueFd in;   // stdin pipe (tty: dup of master)
  std::string in_buf;
  bool close_in = false;
  std::optional<int> status;  // raw wait status once reaped
  uint32_t interest[3] = {0, 0, 0};
};

class GuestInit {
 public:
  explicit GuestInit(GuestArgs args);
  [[noreturn]] void Run();

 private:
  // Mirrors guest::GuestPhase (the wire's Phase) name for name; kept separate because the guest shares no
  // code with the host client.
  enum class Phase { kBooting, kRunning, kStopping, kExited, kFailed, kShuttingDown, kAwaitingTask };

  // guest_init.cc: lifecycle
  BootEnvironment DetectEnvironment();
  void LoadKernelModules();
  Status LoadSpec();
  void StartWorkload();  // the root, network, limits and task directories; then LaunchWorkload() unless the
                         // host's files are awaited
  void LaunchWorkload();
  void FailBoot(const Error& error, int exit_code);
  [[noreturn]] void Loop();
  void OnSignals();
  void OnReaped(pid_t pid, int status);
  void OnWorkloadOutput(int stream);
  void CheckWorkloadFinished();
  void FinalizeExit();
  void RequestStop(int signal, uint64_t kill_timeout_ms);
  [[noreturn]] void Shutdown(const char* why);
  void Deadlines(uint64_t now);
  int NextTimeoutMs(uint64_t now) const;
  bool OomHappened() const;
  void LogBootTimes() const;

  // guest_control.cc: the control channel
  void Listen();
  void OpenSerialPort();
  void OnListener(size_t index);
  void AddConnection(UniqueFd fd, bool serial);
  void OnConnection(uint64_t id, uint32_t events);
  void CloseConnection(uint64_t id, const char* why);
  void HandleMessage(Connection& c, const pb::HostMessage& m);
  void OnHello(Connection& c, uint64_t request_id, const pb::Hello& hello);
  void SupersedeOtherSessions(uint64_t conn_id);
  void StartSession(Connection& c, const pb::Hello& hello);
  Status SignalWorkload(const pb::SignalRequest& request);
  [[noreturn]] void AcknowledgeExit(Connection& c, uint64_t request_id);
  Result<GuestExec*> ExecOf(const Connection& c, uint64_t exec_id);
  Status WriteExecInput(const Connection& c, const pb::ExecInput& input);
  Status ResizeExecTerminal(const Connection& c, const pb::ExecResize& resize);
  Status SignalExec(const Connection& c, const pb::ExecSignal& request);
  void Send(Connection& c, const pb::GuestMessage& m);
  void SendReply(Connection& c, uint64_t request_id, const Status& s);
  void Pump(Connection& c);
  void PumpAll();
  bool FlushConnection(Connection& c);
  void FlushAllBlocking(int timeout_ms);
  void FillStatus(pb::Status* s) const;
  void PollSerial(uint64_t now);

  // guest_files.cc: Nomad's task directories
  Status SetUpTaskFiles();
  void OnFileBatch(Connection& c, uint64_t request_id, const pb::FileBatch& batch);
  void OnFilesReady(Connection& c, uint64_t request_id, const pb::FilesReady& ready);

  // warm_start.cc: a template restored from a snapshot is handed its task (docs/warm-start.md)
  void OnTaskDelivery(Connection& c, uint64_t request_id, const pb::TaskDelivery& delivery);
  Status AcceptTask(const pb::TaskDelivery& delivery);
  void OnFilesWatch(size_t index);
  void SendGuestFileChanges();
  void ResendTwoWayRoots();

  // guest_exec.cc: exec sessions and stats
  Status StartExec(Connection& c, uint64_t request_id, const pb::ExecStart& e);
  void OnExecFd(uint64_t id, int which, uint32_t events);
  void FinishExecIfDone(uint64_t id);
  void KillExecsOf(uint64_t conn_id);
  GuestExec* FindExec(uint64_t id);
  void FlushExecInput(GuestExec& s);
  void FillStats(pb::Stats* s) const;

  // Registration helpers: tokens carry kind and index.
  void Watch(int fd, uint64_t token, uint32_t events, uint32_t& current);
  void UpdateInterest();

  GuestArgs args_;
  TaskSpec spec_;
  BootEnvironment env_;
  Phase phase_ = Phase::kBooting;
  std::string error_;
  BootTimes times_;
  uint64_t boot_id_ = 0;
  UniqueFd epoll_;
  UniqueFd signals_;
  uint32_t signals_interest_ = 0;

  // Workload.
  pid_t workload_pid_ = -1;
  std::optional<int> workload_status_;
  UniqueFd out_pipe_[3];  // index by Stream (1 stdout, 2 stderr)
  uint32_t out_interest_[3] = {0, 0, 0};
  std::unique_ptr<LogBuffer> logs_[3];
  int cgroup_procs_fd_ = -1;
  Identity identity_;
  std::vector<std::string> workload_env_;
  std::string workload_cwd_ = "/";
  uint64_t vmstat_oom_at_start_ = 0;

  // Exit handling.
  std::optional<nfc::guest::ExitReport> exit_;
  bool exit_acked_ = false;
  uint64_t stop_kill_at_ns_ = 0;       // SIGKILL the workload's group at this time (graceful stop)
  uint64_t leftovers_kill_at_ns_ = 0;  // SIGKILL everything left after the workload's exit
  uint64_t exit_ack_deadline_ns_ = 0;

  // Control channel.
  std::vector<UniqueFd> listeners_;
  std::vector<uint32_t> listener_interest_;
  std::map<uint64_t, std::unique_ptr<Connection>> conns_;
  uint64_t next_conn_id_ = 1;
  uint64_t serial_retry_at_ns_ = 0;
  uint64_t serial_give_up_at_ns_ = 0;
  std::map<uint64_t, std::unique_ptr<GuestExec>> execs_;
  uint64_t next_exec_id_ = 1;

  // Task directories.
  struct FileWatch {
    std::string root;
    std::unique_ptr<files::TreeWatcher> watcher;
    uint32_t interest = 0;
  };
  std::map<std::string, std::unique_ptr<files::Mirror>> mirrors_;  // by root name
  std::vector<FileWatch> file_watchers_;                           // the two-way roots
  bool awaiting_files_ = false;     // the workload waits for the host's FilesReady
  uint64_t files_deadline_ns_ = 0;  // ... until then
  uint64_t files_scan_at_ns_ = 0;   // send the two-way roots' changes at this time
};

}  // namespace nfc::init::guest
