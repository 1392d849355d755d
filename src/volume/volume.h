// Volumes: Nomad's host and CSI volumes (TaskConfig.mounts) and device plugins' devices (TaskConfig.devices),
// given to the VM as virtio-blk disks (docs/volumes.md). Firecracker has no shared filesystem (no virtio-fs,
// no 9p), so whatever the host offers, the guest gets a block device:
//   - a host block device is attached as it is; nomad-init mounts it at the task path, filesystem detected;
//   - a host directory keeps one disk image, kImageName (ext4, sparse), made on first use with the task's
//     volume_size and owned inside like the directory itself; the guest mounts that image, and the
//     directory's other files are not seen by the guest;
//   - a device that is a block device is attached and appears as a device node at its task path; a character
//     device cannot be handed to a VM and is refused with a message saying so.
// Read-only holds twice over: the VMM attaches the disk read-only and the guest mounts it read-only. A
// read-write volume has one user at a time, readers share: the VMM holds a lock on the disk for as long as it
// runs (vmm::DriveLock); Prepare() checks that lock first, so a second writer's start fails before its image
// is even downloaded, with kUnavailable (transient: Nomad's restart policy retries once the other user is
// gone).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"

namespace nfc::volume {

// The disk image a directory volume holds: what a host user sees in the directory.
inline constexpr const char* kImageName = "nomad-firecracker.img";
inline constexpr uint64_t kDefaultImageBytes = uint64_t{1} << 30;
inline constexpr uint64_t kMinImageBytes = uint64_t{16} << 20;

struct Request {
  enum class Kind { kMount, kDevice };
  Kind kind = Kind::kMount;
  std::string field;      // where it came from, for messages: "mounts[0]", "devices[1]"
  std::string host_path;  // Nomad's host_path
  std::string task_path;  // absolute path in the guest
  bool read_only = false;
};

// Checks what can be checked without touching the host: absolute, clean task paths, not "/", not used twice,
// not at or below a path the guest reserves for itself (Nomad's task directories: a volume there would hide
// the mirrored files). Every error names the field and the value.
Status CheckRequests(const std::vector<Request>& requests, const std::vector<std::string>& reserved_paths);

struct Disk {
  std::string path;         // the block device, or the directory's image file
  bool image_file = false;  // an image in a directory volume (made by us)
  bool created = false;     // made by this call
};

// Finds (or, for a directory, creates) the disk behind a request and checks that it can be locked for this
// use right now. `image_bytes` sizes an image created here; an existing one is used as it is.
Result<Disk> Prepare(const Request& request, uint64_t image_bytes);

// The capacity the guest sees for a disk: a block device's size, or an image file's length.
Result<uint64_t> DiskBytes(const std::string& path);

// The guest's name of the index-th virtio-blk disk: vda, ..., vdz, vdaa, ... (the kernel's scheme).
std::string GuestDiskName(size_t index);

}  // namespace nfc::volume
