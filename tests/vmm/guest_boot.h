// GuestBoot: boots the real guest (Debian cloud kernel + initramfs with nomad-init) under the QEMU backend
// with a workload from a small ext4 image built from Debian's busybox-static, and talks to nomad-init over
// the control channel with guest::AgentClient. Shared by the `vm` tests and the boot benchmark.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "guest/agent_client.h"
#include "guest/task_spec.h"
#include "vmm/vmm.h"

namespace nfc::vmm::testing {

struct GuestArtifacts {
  std::string vmlinux;
  std::string initramfs;
  // NFC_GUEST_DIR (CMake) or $NFC_GUEST_DIR; empty fields when not built.
  static GuestArtifacts Find();
  bool ok() const;
};

// A work directory with a busybox root image and an empty scratch disk, both ext4, made with mkfs.ext4 -d
// (no loop mounts). Removed on destruction.
class GuestWorkdir {
 public:
  static Result<std::unique_ptr<GuestWorkdir>> Create();
  ~GuestWorkdir();
  const std::string& dir() const { return dir_; }
  std::string root_image() const { return dir_ + "/root.ext4"; }
  std::string scratch_image() const { return dir_ + "/scratch.ext4"; }

 private:
  std::string dir_;
};

struct BootedGuest {
  std::unique_ptr<Vmm> vmm;
  std::unique_ptr<guest::AgentClient> agent;
  std::chrono::steady_clock::time_point t_start;      // before Vmm::Start
  std::chrono::steady_clock::time_point t_started;    // Start returned (QEMU up, vCPUs running)
  std::chrono::steady_clock::time_point t_connected;  // AgentClient handshake done
};

struct BootOptions {
  bool quiet = false;   // "quiet" on the kernel command line
  bool console = true;  // the serial console to <dir>/<name>.console.log
  Backend backend = Backend::kQemu;
  std::string vmm_binary;              // empty: the backend's default
  std::string vmm_log_path;            // Firecracker's logger; QEMU's stderr
  std::string metrics_path;            // Firecracker only
  std::optional<VmmSandbox> sandbox;   // QEMU only: run it confined (docs/security.md)
  std::optional<JailerConfig> jailer;  // Firecracker only: through the jailer (stand-in)
  // Resume this snapshot of an earlier BootGuest with the same name and argv instead of booting.
  std::optional<SnapshotFiles> restore_from;
  // A warm-start template: nomad-init comes up and waits for its task (AgentClient::DeliverTask).
  bool await_task = false;
};

// The task spec BootGuest writes for `name` and `argv` (a template's is the same with await_task set).
guest::TaskSpec GuestTaskSpec(const std::string& name, const std::vector<std::string>& argv);

// Writes the task initramfs for argv and boots it. The VM's console goes to <dir>/<name>.console.log.
Result<BootedGuest> BootGuest(const GuestArtifacts& artifacts, const GuestWorkdir& work,
                              const std::string& name, const std::vector<std::string>& argv,
                              std::chrono::milliseconds connect_timeout, const BootOptions& options = {});

// The Firecracker stand-in as a `firecracker` binary: a script in `dir` that runs fake-firecracker playing
// API version `version` (e.g. "1.16.1", spec from `spec_dir`), booting guests with QEMU and relaying the
// guest agent's vsock port to its virtio-serial port, every request appended to `record`. Returns its path.
Result<std::string> WriteFirecrackerStandIn(const std::string& dir, const std::string& fake_firecracker,
                                            const std::string& spec_dir, const std::string& version,
                                            const std::string& record);

// The jailer stand-in as a `jailer` binary: a script in `dir` that runs fake-jailer with what the Firecracker
// stand-in script of WriteFirecrackerStandIn needs inside the jail, which the real jailer never provides (and
// real Firecracker never needs): a shell, shared libraries and QEMU (/usr, /bin, /lib, /lib64, /etc,
// /dev/null), the stand-in's own directory and the spec directory read-only, `record` writable (made
// world-writable: the VM's uid appends to it), and /proc (ASan reads it).
Result<std::string> WriteJailerStandIn(const std::string& dir, const std::string& fake_jailer,
                                       const std::string& fake_firecracker, const std::string& spec_dir,
                                       const std::string& record);

struct WorkloadResult {
  guest::ExitReport exit;
  std::string out, err;
  std::chrono::steady_clock::time_point t_exit_received;
  guest::BootTimes boot;  // nomad-init's timestamps, queried before the exit is acknowledged
};
// Reads the workload's stdout until `want` shows up, acknowledging nothing (so a VM restored from a snapshot
// taken afterwards sends it again).
Status AwaitOutput(guest::AgentClient& agent, const std::string& want, std::chrono::milliseconds timeout);

// Reads logs until the exit result arrives and both streams reached its log_end; acknowledges everything.
Result<WorkloadResult> CollectWorkload(guest::AgentClient& agent, std::chrono::milliseconds timeout);

}  // namespace nfc::vmm::testing
