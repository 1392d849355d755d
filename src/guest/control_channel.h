// The names the host and nomad-init agree on for the control channel, in one place: the VMM backends use them
// as their defaults (src/vmm/vmm.h), the task description carries them to the guest (task_spec.h).
// Header-only and dependency-free, so src/vmm can use it without linking the guest protocol.
#pragma once

#include <cstdint>
#include <string_view>

namespace nfc::guest {

// The vsock port nomad-init listens on (Firecracker hybrid vsock, AF_VSOCK with vhost-vsock).
inline constexpr uint32_t kDefaultVsockPort = 1024;
// The virtio-serial port name the host exports the channel under (QEMU without vhost-vsock); nomad-init finds
// it in /sys/class/virtio-ports/*/name.
inline constexpr std::string_view kDefaultSerialPortName = "nfc.agent";

}  // namespace nfc::guest
