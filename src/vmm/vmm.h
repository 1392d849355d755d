// nfc::vmm: one interface to run a microVM, whichever VMM runs it (Firecracker or QEMU microvm).
//
// The caller (the task shim) describes the VM in a VmConfig, creates a Vmm with CreateVmm(), Start()s it, and
// then Wait()s for it to end, asking it to stop gracefully (RequestShutdown) or hard (Kill) when told to. The
// guest's control channel is reached with ConnectGuest(), which returns a plain connected byte stream
// whatever the transport (Firecracker hybrid vsock, AF_VSOCK, or a QEMU virtio-serial port on a unix socket).
// Record() gives the facts to find the VMM again after the supervisor restarts; AttachVmm() turns them back
// into a Vmm.
//
// Nothing here knows about gRPC, Nomad or the guest protocol. Backends live in vmm/firecracker/ and
// vmm/qemu/.
//
// Threads: a Vmm may be used from several threads at once. Wait() may block in one thread while another calls
// RequestShutdown(), Kill(), ConnectGuest() or Record(); the calls that talk to the VMM's API socket are
// serialized inside. Start() must return before any other call except Record() and Kill().
//
// Processes: the Vmm reaps its own VMM child (waitpid on that pid). A supervisor that reaps with waitpid(-1)
// must leave this pid alone, or Wait() reports the exit status as unknown.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "guest/control_channel.h"
#include "sandbox/cgroup.h"

namespace nfc::vmm {

enum class Backend { kFirecracker, kQemu };
std::string_view BackendName(Backend backend);
Result<Backend> ParseBackend(std::string_view name);  // "firecracker" | "qemu"

// Whether the VMM holds a lock on a drive's file for as long as it runs (base/fs.h TryLockFile): volumes that
// several VMs may be given. kShared for read-only users, kExclusive for the one read-write user.
enum class DriveLock { kNone, kShared, kExclusive };

struct Drive {
  std::string id;  // [A-Za-z0-9_]{1,64}; Firecracker drive_id
  std::string path;
  bool read_only = false;
  DriveLock lock = DriveLock::kNone;
};

struct NetworkInterface {
  std::string id;   // [A-Za-z0-9_]{1,64}; Firecracker iface_id, e.g. "eth0"
  std::string tap;  // an existing TAP device, in the network namespace the VMM runs in
  std::string mac;  // "aa:bb:cc:dd:ee:ff"; empty: the VMM picks one
  uint32_t mtu =
      0;  // advertised to the guest when the VMM can (Firecracker >= 1.16, QEMU host_mtu); 0: default
};

// How the host reaches the agent in the guest. The backend chooses the transport:
// - Firecracker: hybrid vsock; `socket_path` is the `uds_path`, the host sends "CONNECT <port>\n".
// - QEMU with /dev/vhost-vsock: AF_VSOCK to (guest_cid, port); `socket_path` is unused.
// - QEMU without it: a virtio-serial port named `serial_port_name`, exported on the unix socket `socket_path`
//   (one byte stream; `port` is not used on that transport).
struct GuestChannelConfig {
  std::string socket_path;
  uint32_t guest_cid = 3;
  uint32_t port = guest::kDefaultVsockPort;
  std::string serial_port_name{guest::kDefaultSerialPortName};
};

enum class GuestTransport { kFirecrackerVsock, kAfVsock, kVirtioSerial };
std::string_view GuestTransportName(GuestTransport transport);

// Enough to connect to the guest agent, also from another process after a restart.
struct GuestEndpoint {
  GuestTransport transport = GuestTransport::kFirecrackerVsock;
  std::string socket_path;
  uint32_t guest_cid = 0;
  uint32_t port = 0;
};

// The guest's serial console. kFile keeps at most `max_bytes` in `path` plus one rotated `path`.1 (the oldest
// output is dropped first); the pump runs in the process that owns the Vmm.
struct ConsoleConfig {
  enum class Mode { kOff, kFile };
  Mode mode = Mode::kOff;
  std::string path;
  uint64_t max_bytes = 1 << 20;
};

// QEMU's confinement (docs/security.md): `-runas uid:gid -chroot jail_dir` and its seccomp sandbox: QEMU
// opens its files, sockets and devices as root, then chroots into the empty jail and drops to uid:gid (real,
// effective and saved; no capabilities left) before the guest runs a single instruction. Firecracker's
// envelope is its jailer (JailerConfig).
struct VmmSandbox {
  uint32_t uid = 0;      // the VM's own, unique on the host; never 0
  uint32_t gid = 0;      // never 0
  std::string jail_dir;  // an existing empty directory, absolute
  // cgroup.procs files the VMM joins before it execs (sandbox/cgroup.h); empty: it stays in its starter's.
  std::vector<std::string> cgroup_procs;
};

// Firecracker's confinement: the VMM is started through its jailer (vmm.md 4), which makes the chroot
// <chroot_base>/<firecracker's file name>/<id>/root, joins the network namespace, creates the cgroup
// <parent_cgroup>/<id> with the given limits, builds the jail (mount namespace, pivot_root, device nodes),
// and runs Firecracker as uid:gid, as PID 1 of a new pid namespace. Before that the backend hard-links the
// kernel, initrd, drives and log files into the chroot (a copy, with a warning, for a read-only file on
// another filesystem), hands the writable drives and the TAP to uid:gid, and afterwards it removes the
// chroot.
struct JailerConfig {
  std::string binary = "jailer";  // path, or a name found in PATH
  std::string chroot_base;        // --chroot-base-dir: absolute; best on the drives' filesystem
  uint32_t uid = 0;               // never 0
  uint32_t gid = 0;               // never 0
  std::string netns_path;         // --netns; empty: the starter's
  // --parent-cgroup (relative, e.g. "nomad-firecracker") and the limits written as --cgroup file=value in
  // the host's cgroup version (sandbox/cgroup.h); an empty parent: no cgroup.
  std::string parent_cgroup;
  sandbox::CgroupLimits limits;
  uint64_t open_files = 2048;  // --resource-limit no-file (the jailer's default)
};

// Where the jailer makes the VM's chroot: <chroot_base>/<exec_file's name>/<id> (its "root" below it).
std::string JailerDir(const std::string& chroot_base, const std::string& exec_file, const std::string& id);

// Kills the Firecracker a jailer started in `jail_dir` (JailerDir) and waits until it is gone, finding it by
// the jailer's pid file: for a VMM whose starter died before it recorded the VMM (an interrupted start, a
// shim killed at the wrong moment). Only a process whose root is that jail is killed (a reused pid is left
// alone). No pid file, or no such process: OK.
Status KillJailedVmm(const std::string& jail_dir);

// A paused VM's saved state (docs/warm-start.md). Firecracker writes two files: the microVM state
// (snapshot_path) and the guest memory (mem_file_path). QEMU writes one migration stream, device state and
// RAM together, to state_path; memory_path is unused.
struct SnapshotFiles {
  std::string state_path;
  std::string memory_path;
};

struct VmConfig {
  std::string id;          // [A-Za-z0-9-]{1,64}; Firecracker --id, QEMU -name
  std::string state_dir;   // existing directory for this VM's sockets and files (API/QMP socket, pid file)
  std::string vmm_binary;  // empty: "firecracker" / "qemu-system-x86_64" from PATH

  std::string kernel_path;  // Firecracker: uncompressed ELF vmlinux; QEMU: vmlinux (PVH) or bzImage
  std::string initrd_path;  // optional
  // Appended to the backend's platform arguments (console, reboot method, panic, i8042, clock; see
  // docs/guest-kernel.md). With replace_kernel_args they are the whole command line.
  std::vector<std::string> kernel_args;
  bool replace_kernel_args = false;

  uint32_t vcpus = 1;
  uint32_t memory_mib = 256;
  std::vector<Drive> drives;  // in guest order: the first is /dev/vda
  std::vector<NetworkInterface> nics;
  std::optional<GuestChannelConfig> guest_channel;
  ConsoleConfig console;
  std::string vmm_log_path;  // the VMM's own log (Firecracker logger, QEMU stderr); empty: discarded
  std::string metrics_path;  // Firecracker metrics file; ignored by QEMU
  bool allow_kvm = true;     // QEMU: use KVM if the probe says it works; false forces TCG
  // QEMU: what the caller's own probe (qemu::ProbeKvm, on the same binary and kernel) found, so that the VMM
  // does not boot a probe guest of its own on every start (up to 10 s where nested KVM crawls). nullopt: the
  // backend probes.
  std::optional<bool> kvm_usable;
  std::optional<VmmSandbox> sandbox;   // QEMU; nullopt: the VMM runs as its starter (root), unconfined
  std::optional<JailerConfig> jailer;  // Firecracker; nullopt: likewise
  // A VMM whose control socket (Firecracker's API, QEMU's QMP) has not answered for this long is stopped
  // (SIGSTOP, a debugger) or hung: Wait() kills it and reports kUnresponsive.
  std::chrono::milliseconds unresponsive_after{30000};
  // SIGKILL the VMM when its owner goes away (PR_SET_PDEATHSIG). For tests and the CLI; a shim leaves it off
  // so the VM survives the shim and can be found again from the VmRecord. Caveat: the kernel sends it when
  // the *thread* that called Start() exits, so call Start() from a thread that lives as long as the VM.
  bool kill_with_owner = false;
  // Start() resumes this snapshot instead of booting the kernel. The VM must be described as the one that was
  // snapshotted (vCPUs, memory, kernel, the same drives, NICs and guest channel in the same order); their
  // backing files, TAPs and sockets may differ. Firecracker: the snapshot's drives are repointed with
  // PATCH /drives and its TAPs with network_overrides (versions whose API has them), before the resume.
  std::optional<SnapshotFiles> restore_from;
};

// Checks ids, paths and ranges; the message names the field and value.
Status ValidateConfig(const VmConfig& config);

// The ids a task's VM gives its NICs ("eth0", ...) and volume disks ("vol0", ...). A warm-start template's VM
// uses the same ones: a restore repoints devices by id (Firecracker's network_overrides, PATCH /drives).
std::string NicId(size_t index);
std::string VolumeDriveId(size_t index);

// How a VM ended.
struct VmExit {
  enum class Kind {
    kGuestStopped,   // the guest reset/powered off (Firecracker exit 0; QEMU guest-shutdown/guest-reset)
    kVmmCrashed,     // the VMM exited non-zero or died from a signal we did not send
    kKilled,         // we ended it (Kill(), or a graceful stop that ran out of time)
    kInternalError,  // QEMU: the VM stopped with an internal/emulation error; we killed QEMU
    kUnresponsive,   // the VMM stopped answering its control socket (stopped, or hung); we killed it
    kUnknown,        // not our child (attached after a restart): it is gone, its status is not known
  };
  Kind kind = Kind::kUnknown;
  int wait_status = -1;  // raw waitpid() status when known
  std::string detail;    // "exit status 1", "killed by signal 9 (SIGKILL)", "KVM internal error", ...
};
std::string_view ExitKindName(VmExit::Kind kind);

// The facts a supervisor stores to find the VMM again after its own restart.
struct VmRecord {
  Backend backend = Backend::kFirecracker;
  std::string id;
  pid_t pid = -1;
  unsigned long long start_time = 0;  // kernel start time of pid (guards against pid reuse)
  std::string api_socket;             // Firecracker API socket or QEMU QMP socket
  std::optional<GuestEndpoint> guest;
  std::string console_path;
  bool kvm = false;         // QEMU: accelerated; Firecracker: always true
  std::string vmm_version;  // "1.16.1" / "7.2.22" when known
  std::string jail_dir;  // Firecracker through the jailer: <chroot_base>/<exec name>/<id>, removed at the end

  std::string ToJson() const;
  static Result<VmRecord> FromJson(std::string_view json);
};

class Vmm {
 public:
  virtual ~Vmm() = default;
  Vmm(const Vmm&) = delete;
  Vmm& operator=(const Vmm&) = delete;

  // Spawns the VMM, configures it and starts the guest's vCPUs. Blocks until the VMM accepted the start
  // (Firecracker: InstanceStart answered 204; QEMU: QMP says "running") or failed; on failure the VMM process
  // is killed and reaped and its sockets removed. Call once.
  virtual Status Start() = 0;

  // Blocks until the VMM process is gone, or `timeout` passes (then kTimeout). Repeated calls after the end
  // return the same VmExit. QEMU: an internal error that stops the VM without ending QEMU is detected here,
  // QEMU is killed and kInternalError returned.
  virtual Result<VmExit> Wait(std::chrono::milliseconds timeout) = 0;

  // Asks the guest to shut down (Firecracker: SendCtrlAltDel, which nomad-init gets as SIGINT; QEMU:
  // system_powerdown). Returns once the request is delivered, without waiting for the guest.
  virtual Status RequestShutdown() = 0;

  // Ends the VMM now (SIGKILL after a best-effort QMP quit for QEMU). Does not wait: call Wait() to reap.
  // Safe to call repeatedly and after the VMM has ended.
  virtual Status Kill() = 0;

  // A new connected stream to the guest agent (port is the vsock port; ignored on virtio-serial). Retries
  // until the guest listens or `timeout` passes. Thread-safe; blocks.
  virtual Result<UniqueFd> ConnectGuest(uint32_t port, std::chrono::milliseconds timeout) = 0;

  virtual VmRecord Record() const = 0;

  // Pauses the guest and writes a full snapshot of it to `files` (created or truncated, mode 0600). The VM
  // stays paused; the caller ends it with Kill(). Blocks until the files are complete.
  virtual Status Snapshot(const SnapshotFiles& files) = 0;

 protected:
  Vmm() = default;
};

// Picks the backend implementation. Validates the config; spawns nothing.
Result<std::unique_ptr<Vmm>> CreateVmm(Backend backend, VmConfig config);

// Rebuilds a Vmm for a VMM started by an earlier process (not our child). Fails with kNotFound if the
// recorded process is gone or its pid was reused. Start() is not allowed on it; Wait() reports kUnknown once
// it is gone.
Result<std::unique_ptr<Vmm>> AttachVmm(const VmRecord& record);

// Connects to a guest agent endpoint (used by ConnectGuest, and usable from any process that has the record).
Result<UniqueFd> ConnectGuestEndpoint(const GuestEndpoint& endpoint, uint32_t port,
                                      std::chrono::milliseconds timeout);

}  // namespace nfc::vmm
