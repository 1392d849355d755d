// The per-task state directory: the one place on disk that describes a task, shared by the plugin (which
// creates it and writes the boot files), the shim (which owns everything in it while the task lives) and
// DestroyTask (which removes it). TaskDir is the one owner of its file names; docs/lifecycle.md has the
// table. Layout under <data_dir>/tasks/<TaskDirName(task id)>/:
//
//   start.json         the start record (task/driver_state.h StartRecord), written first by the plugin
//   initramfs.img      the shared initramfs + the task's cpio (the guest TaskSpec), written by the plugin
//   scratch.img        the writable scratch disk (sparse), created by the plugin
//   shim.json          the shim's configuration, written by the plugin before the shim starts
//   driver_state.json  a copy of the TaskHandle's driver_state, written once the workload runs: its absence
//                      marks an interrupted start (Manager::Init)
//   control.sock       the shim's control socket (control.proto)
//   shim.pid           "<pid> <start time>" of the shim, written by the shim once it serves
//   vmm.json           the VMM's record (pid + start time, sockets), written by the shim right after the VMM
//                      started, so DestroyTask can kill a VMM whose shim was killed
//   exit.json          the durable exit record (exit_record.h), written once
//   agent.sock         the guest channel's host end (hybrid vsock or virtio-serial socket), made by the VMM
//   shim.log           the shim's own log (hclog text)
//   console.log        the guest's serial console, bounded
//   vmm.log            the VMM's own log (Firecracker logger, QEMU stderr)
// The VMM backends add their own API sockets beside these (firecracker.sock, qmp.sock; src/vmm). Firecracker
// through its jailer has its sockets in its chroot instead, <data_dir>/jail/<exec name>/<vm id>/root.
#pragma once

#include <string>
#include <string_view>

namespace nfc::shim {

// A file-system-safe, readable, bounded directory name for a Nomad task id ("<alloc>/<task>/<8 hex>"): '/'
// becomes '.', anything outside [A-Za-z0-9._-] becomes '_', and names longer than 100 bytes are cut and given
// a hash suffix (added whenever the name differs from the id) so distinct ids never collide.
std::string TaskDirName(std::string_view task_id);

struct TaskDir {
  std::string root;

  // Relative name of the guest channel socket: the VMM and the shim run with the task dir as their cwd, and
  // a relative path keeps deep data dirs within the 108-byte limit of unix socket paths.
  static constexpr std::string_view kAgentSocketName = "agent.sock";

  std::string StartRecord() const { return root + "/start.json"; }
  std::string Initramfs() const { return root + "/initramfs.img"; }
  std::string ShimConfig() const { return root + "/shim.json"; }
  std::string DriverState() const { return root + "/driver_state.json"; }
  std::string ControlSocket() const { return root + "/control.sock"; }
  std::string ShimPid() const { return root + "/shim.pid"; }
  std::string ExitRecord() const { return root + "/exit.json"; }
  std::string ShimLog() const { return root + "/shim.log"; }
  std::string ConsoleLog() const { return root + "/console.log"; }
  std::string VmmLog() const { return root + "/vmm.log"; }
  std::string VmmRecord() const { return root + "/vmm.json"; }
  std::string Scratch() const { return root + "/scratch.img"; }
  std::string Jail() const { return root + "/jail"; }  // the empty root a sandboxed VMM chroots into
};

inline TaskDir TaskDirFor(const std::string& data_dir, std::string_view task_id) {
  return TaskDir{data_dir + "/tasks/" + TaskDirName(task_id)};
}

// The uid leases of sandboxed VMMs (sandbox/uid_pool.h), owned by task directories.
inline std::string VmUidPoolDir(const std::string& data_dir) {
  return data_dir + "/vm-uids";
}
// Firecracker's jails (--chroot-base-dir): on the data dir's filesystem, so the drives are hard-linked into
// them; short, so the sockets inside fit a unix socket path.
inline std::string JailerBaseDir(const std::string& data_dir) {
  return data_dir + "/jail";
}
// The data dir a task directory of TaskDirFor() lives in.
inline std::string DataDirOf(const TaskDir& dir) {
  std::string tasks = dir.root.substr(0, dir.root.rfind('/'));
  return tasks.substr(0, tasks.rfind('/'));
}

}  // namespace nfc::shim
