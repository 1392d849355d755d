// BackendVmm: the part of a Vmm every backend does the same way, so Firecracker and QEMU keep only what
// differs (their argv, how they configure and start the guest, how they read an exit).
//
// Shared here: the one-Start rule and the rollback of a failed Start (SIGKILL, reap, remove sockets, context
// "start <Name> VM <id>"); spawning the VMM in its own session with stderr to a file and the serial console
// through a ConsolePump; the VmRecord (filled at spawn, guarded, copied out); ConnectGuest through the
// record; adopting a VMM from a record; killing a spawned VMM its owner dropped without waiting; the exit
// cases that do not depend on the backend (gone with status unknown, killed by us).
//
// Thread-safety: Start, Kill, ConnectGuest and Record may be called from any thread. Backends guard their own
// control connection (API client, QMP) with their own mutex.
#pragma once

#include <signal.h>

#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vmm/console_pump.h"
#include "vmm/vmm.h"
#include "vmm/vmm_process.h"

namespace nfc::vmm {

class BackendVmm : public Vmm {
 public:
  // Kills and reaps a VMM this object spawned when the owner drops it without waiting for the end; an
  // attached VMM (after a restart) is left alone.
  ~BackendVmm() override;

  // Checks the one-Start rule, runs Launch(), and on failure kills and reaps the VMM and removes its sockets.
  Status Start() final;
  Status Kill() override { return process_.Signal(SIGKILL); }
  Result<UniqueFd> ConnectGuest(uint32_t port, std::chrono::milliseconds timeout) final;
  VmRecord Record() const final;

 protected:
  // `name` names the backend in messages ("Firecracker", "QEMU"); `control_socket` is its API/QMP socket.
  // `config` is taken by rvalue reference so callers may compute the paths from it in the same call.
  BackendVmm(std::string_view name, VmConfig&& config, std::string control_socket, std::string stderr_path);
  // Attached to a VMM an earlier process started (Start is refused). Call AdoptProcess() next.
  BackendVmm(std::string_view name, const VmRecord& record);

  // The backend's start: build the argv, SpawnVmm(), configure, run the guest. Called once, from Start().
  virtual Status Launch() = 0;

  struct SpawnSpec {
    std::vector<std::string> argv;
    Backend backend = Backend::kFirecracker;
    bool kvm = true;
    std::optional<GuestEndpoint> guest;      // recorded for ConnectGuest and for a later AttachVmm
    std::vector<std::string> stale_sockets;  // removed before the spawn (a VMM refuses to bind over them)
    // The VMM's chroot, removed once the VMM is gone (or its start failed). The program spawned is a jailer
    // that closes every inherited fd, so the drive locks are held by this process instead of the VMM.
    std::string jail_dir;
  };
  // Removes stale sockets, truncates the stderr file, starts the console pump when the console is on (the
  // VMM's stdout is the console), spawns the VMM in its own session with cwd = state_dir, and fills the
  // record.
  Status SpawnVmm(SpawnSpec spec);

  // The spawned program (a jailer) ended and left the VMM `pid` to us: follow and record that one instead.
  Status FollowVmm(pid_t pid);
  // Follows the recorded process (pid + start time guard against reuse).
  Status AdoptProcess();
  void SetRecordedVersion(std::string version);

  // The exits every backend reports the same way: kUnknown for an adopted VMM that is gone, kKilled after our
  // Kill(). nullopt: the backend decides from `status`.
  std::optional<VmExit> CommonExit(int status);
  // "; stderr: <last bytes>" of the VMM's stderr file, or "" when it is empty.
  std::string StderrSuffix() const;
  // After the VMM ended: waits for the console's last bytes and removes the sockets and the jail.
  void AfterExit();
  // Removes the control socket and the guest channel's socket.
  void RemoveSockets();
  // Releases the drive locks held here and removes the recorded jail.
  void RemoveJail();

  // The hang watch both backends run from Wait(), between slices of waiting for the exit: after each poll of
  // the control socket, Silent() records an answer (answered) or tells whether the socket has now been
  // silent for config_.unresponsive_after. KillUnresponsive() then kills the VMM and returns the reason its
  // VmExit carries: "<control> did not answer for N s (<last error>); its process is stopped ...; killed".
  bool Silent(bool answered);
  std::string KillUnresponsive(std::string_view control, const Error& last_error);

  // "Firecracker VM web-1": the subject of messages.
  std::string Subject() const { return name_ + " VM " + config_.id; }
  bool console_on() const { return config_.console.mode == ConsoleConfig::Mode::kFile; }

  VmConfig config_;
  const std::string name_;
  const std::string control_socket_;
  const std::string stderr_path_;
  const bool attached_;
  VmmProcess process_;
  ConsolePump console_;

 private:
  std::mutex start_mu_;
  bool started_ = false;
  mutable std::mutex record_mu_;
  VmRecord record_;
  std::chrono::steady_clock::time_point last_answer_{};  // of the control socket, for Silent()
  std::vector<UniqueFd> drive_locks_;  // held here when the VMM cannot inherit them (SpawnSpec::jail_dir)
};

// The last `max` bytes of a file (trailing newlines dropped), "..." first when cut; "" when unreadable.
std::string FileTail(const std::string& path, size_t max);

}  // namespace nfc::vmm
