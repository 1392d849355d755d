// Jail: what the Firecracker backend does around Firecracker's jailer (vmm.md 4): the chroot's paths, the
// files it puts there before the jailer runs (every path Firecracker is given resolves inside the jail), the
// TAP handed to the VM's uid, the jailer's command line, and the chroot's removal after the VM.
//
// Layout, for C = <chroot_base>/<exec file name>/<id>/root (Firecracker's "/"):
//   C/<exec file name>      the jailer's copy of Firecracker
//   C/<exec file name>.pid  Firecracker's pid, written by the jailer (the process runs in a new pid
//   namespace) C/run/firecracker.socket  the API socket C/v.sock                the hybrid vsock socket
//   (uds_path) C/vmlinux, C/initrd, C/<drive id>, C/firecracker.log, C/metrics.json
// Files are hard links to the originals (so a writable drive is the task's own file, and nothing is copied);
// a read-only file on another filesystem is copied, with a warning; a writable one there is refused.
#pragma once

#include <string>
#include <vector>

#include "base/error.h"
#include "vmm/vmm.h"

namespace nfc::vmm::firecracker {

class Jail {
 public:
  // `exec_file`: Firecracker's binary, an absolute path (the jailer copies it into the chroot).
  Jail(JailerConfig config, std::string vm_id, std::string exec_file);

  const std::string& dir() const { return dir_; }    // <chroot_base>/<exec name>/<id>: removed after the VM
  const std::string& root() const { return root_; }  // dir + "/root"
  std::string HostPath(const std::string& jailed) const { return root_ + jailed; }
  std::string PidFile() const;
  static constexpr const char* kApiSocket = "/run/firecracker.socket";
  static constexpr const char* kVsockSocket = "/v.sock";

  // Makes the chroot directory (removing a stale one of the same id first).
  Status Create() const;
  // Puts `host_path` into the jail as /<name> and returns that jailed path, readable by the VM's uid:gid
  // (the jailer runs Firecracker as that user) and, when `writable`, handed to it.
  Result<std::string> Place(const std::string& host_path, const std::string& name, bool writable) const;
  // Lets the VM's uid:gid attach to the existing persistent TAP `tap` of our network namespace (TUNSETOWNER
  // and TUNSETGROUP): Firecracker opens it after the privilege drop.
  Status GrantTap(const std::string& tap) const;
  // The jailer's command line, `firecracker_args` after "--". Reads the host's cgroup version when the
  // config names a parent cgroup.
  Result<std::vector<std::string>> Argv(const std::vector<std::string>& firecracker_args) const;
  // Firecracker's pid from the jailer's pid file.
  Result<pid_t> ReadPid() const;
  // Removes the chroot (links and copies only: the originals stay).
  Status Remove() const;

 private:
  Status GrantAccess(const std::string& target, const std::string& host_path, bool writable) const;

  JailerConfig config_;
  std::string id_;
  std::string exec_file_;
  std::string exec_name_;
  std::string dir_;
  std::string root_;
};

}  // namespace nfc::vmm::firecracker
