// The per-task state directory: the one place on disk that describes a task, shared by the plugin (which
// creates it and writes the shim's config), the shim (which owns everything in it while the task lives) and
// DestroyTask (which removes it). Layout under <data_dir>/tasks/<TaskDirName(task id)>/:
//
//   shim.json          the shim's configuration (written by the plugin before the shim starts)
//   driver_state.json  a copy of the TaskHandle's driver_state (for `ps`, and for humans)
//   control.sock       the shim's control socket (control.proto)
//   shim.pid           "<pid> <start time>" of the shim, written by the shim once it serves
//   exit.json          the durable exit record (exit_record.h), written once
//   shim.log           the shim's own log (hclog text)
//   console.log        the guest's serial console, bounded
//   task.cpio          the guest's task description (appended to the shared initramfs)
//   scratch.img        the writable scratch disk (sparse)
//   vmm/               the VMM's sockets and files
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

  std::string ShimConfig() const { return root + "/shim.json"; }
  std::string DriverState() const { return root + "/driver_state.json"; }
  std::string ControlSocket() const { return root + "/control.sock"; }
  std::string ShimPid() const { return root + "/shim.pid"; }
  std::string ExitRecord() const { return root + "/exit.json"; }
  std::string ShimLog() const { return root + "/shim.log"; }
  std::string ConsoleLog() const { return root + "/console.log"; }
  std::string TaskCpio() const { return root + "/task.cpio"; }
  std::string Scratch() const { return root + "/scratch.img"; }
  std::string VmmDir() const { return root + "/vmm"; }
};

inline TaskDir TaskDirFor(const std::string& data_dir, std::string_view task_id) {
  return TaskDir{data_dir + "/tasks/" + TaskDirName(task_id)};
}

}  // namespace nfc::shim
