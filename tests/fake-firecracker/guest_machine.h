// GuestMachine: what makes the Firecracker stand-in boot. At InstanceStart the stand-in hands it the VM as
// the API configured it (the shape of GET /vm/config) and it runs that VM in QEMU microvm under TCG, since
// Firecracker itself cannot run here (no usable KVM, not packaged):
//
// - kernel, initrd, boot_args (Firecracker's replace the default command line; `root=` is added for a root
//   drive as Firecracker does), vCPUs and memory as configured;
// - drives as virtio-blk in the order they were added, read-only flags kept; the NIC on the given TAP with
// its
//   MAC and MTU;
// - the platform of the version played: ACPI (and so the devices in the DSDT) from 1.8 on; before 1.8 no
// ACPI,
//   and the devices are announced only as virtio_mmio.device= arguments (QEMU adds them, as Firecracker
//   does), so a guest kernel without VIRTIO_MMIO_CMDLINE_DEVICES finds no disks, as it would on
//   Firecracker 1.7;
// - an i8042, so SendCtrlAltDel is a real Ctrl+Alt+Del and reboot=k's reset write ends the VM;
// - the serial console on the stand-in's stdout, where Firecracker writes it (before 1.14's /serial).
//
// Firecracker's ends (vmm.md 2): a guest reset (reboot, panic=1, triple fault) ends the VM and the stand-in
// exits 0; a guest poweroff halts the guest and the process stays up; a QEMU that dies any other way is a VMM
// failure (exit 2, "unexpected error").
//
// Hybrid vsock: Firecracker's device is virtio-vsock, which QEMU here cannot give (no /dev/vhost-vsock, no
// vhost-user backend in Debian). Each guest port the stand-in is told to relay becomes a virtio-serial port
// of a chosen name; the guest "listens" on the port while it holds that serial port open (QMP
// VSERPORT_CHANGE). A host "CONNECT <port>\n" on uds_path then gets "OK <host port>\n" and a byte stream to
// the guest, exactly as on Firecracker; while the guest does not listen, the connection is closed without an
// answer (the RST case). One stream per port at a time: a second CONNECT waits until the first ends
// (virtio-serial has one byte stream per port). Guest-initiated connections (to <uds_path>_<port>) are not
// relayed.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"

namespace nfc::fakefc {

struct MachineOptions {
  std::string qemu;      // qemu-system-x86_64
  std::string work_dir;  // QEMU's QMP and serial sockets go here (short paths: sun_path)
  std::string id;
  bool acpi = true;                              // Firecracker >= 1.8
  std::map<uint32_t, std::string> vsock_relays;  // guest vsock port -> virtio-serial port name
};

class GuestMachine {
 public:
  // Starts QEMU for `vm_config` and connects to its QMP; fails (QEMU killed) when QEMU does not come up.
  static Result<std::unique_ptr<GuestMachine>> Boot(const MachineOptions& options,
                                                    const nlohmann::json& vm_config);
  // Boot() of a saved machine: QEMU loads the stream SaveMemory() wrote (device state and RAM: the stand-in's
  // "memory file") and runs on from there. `open_ports` is OpenPorts() at the save: the guest held those
  // ports open, and a loaded QEMU does not announce them again.
  static Result<std::unique_ptr<GuestMachine>> Restore(const MachineOptions& options,
                                                       const nlohmann::json& vm_config,
                                                       const std::string& memory_path,
                                                       const std::map<std::string, bool>& open_ports);

  // PATCH /vm: the vCPUs stop or go on.
  void Pause();
  void Resume();
  // Writes the paused machine as a QEMU migration stream to `path` and waits until it is complete.
  Status SaveMemory(const std::string& path);
  std::map<std::string, bool> OpenPorts() const;
  ~GuestMachine();
  GuestMachine(const GuestMachine&) = delete;
  GuestMachine& operator=(const GuestMachine&) = delete;

  // True for the ports this machine relays (others are the caller's business).
  bool Relays(uint32_t port) const { return options_.vsock_relays.count(port) != 0; }
  // Takes `host_fd` (its "CONNECT port\n" read; `early` holds bytes the host sent after it): answers
  // "OK <host_port>\n" and relays, or closes it when the guest does not listen on `port`.
  void Connect(uint32_t port, int host_fd, std::string early, uint32_t host_port);

  // Ctrl+Alt+Del on the i8042.
  Status SendCtrlAltDel();

  // nullopt while the VM runs or the guest halted; otherwise the exit code Firecracker would end with.
  std::optional<int> Ended();
  // Stops QEMU (the stand-in is exiting).
  void Kill();

 private:
  explicit GuestMachine(MachineOptions options) : options_(std::move(options)) {}
  static Result<std::unique_ptr<GuestMachine>> Start(const MachineOptions& options,
                                                     std::vector<std::string> argv);
  void EnableMigrationEvents();
  Status WaitMigration();
  struct State;
  MachineOptions options_;
  std::shared_ptr<State> state_;
  pid_t qemu_pid_ = -1;
  std::optional<int> ended_;
};

}  // namespace nfc::fakefc
