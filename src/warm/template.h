// nfc::warm: warm-start templates (docs/warm-start.md). A template is a VM booted once to nomad-init's
// "awaiting task" state (kernel up, no root mounted, no task, no secrets, no network identity) and saved
// paused; a later start with the same inputs restores it and hands the guest its task instead of booting.
//
// This folder owns what a template depends on (its key), where it lives (<data_dir>/templates/<key>/), how it
// is built (once per key, also across processes sharing the data dir: a file lock), and which templates are
// stale. It knows nothing of Nomad: the task pipeline (task/warm_start.h) decides when a start may be warm.
//
// A running VM never uses a template's files in place: the start hard-links them into its task dir, so a
// template can be removed (GC, a rebuild) at any moment without touching the VMs restored from it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "vmm/vmm.h"

namespace nfc::warm {

// A volume disk as the template's guest sees it: a restored VM's volume must have its size (the guest read
// the capacity when it probed the disk) and its read-only flag (a device feature).
struct VolumeShape {
  uint64_t bytes = 0;
  bool read_only = false;
};

// The MAC a template's network interface `index` has: the guest of a restored VM finds its interface by it
// and gives it the task's (guest::InterfaceConfig::current_mac). Locally administered; no template ever sends
// a frame (its guest never brings the link up).
std::string TemplateMac(size_t index);

// Everything a template's snapshot depends on. A restored VM must have the template's memory size, vCPUs,
// devices (their number, order and sizes) and run the same kernel, initramfs and VMM: any change is another
// key. Files count by identity (device, inode, size, modification time): a replaced kernel is a new key.
// Devices count by shape: the task's own TAPs and volume files replace the template's on restore.
struct TemplateInputs {
  vmm::Backend backend = vmm::Backend::kQemu;
  std::string vmm_binary;  // resolved path
  std::string kernel_path;
  std::string base_initrd_path;  // the shared initramfs with nomad-init (the template adds its spec)
  std::vector<std::string> kernel_args;
  uint32_t vcpus = 1;
  uint32_t memory_mib = 256;
  std::string image_digest;    // the image's manifest digest
  std::string rootfs_path;     // the image's read-only ext4 root: /dev/vda
  uint64_t scratch_bytes = 0;  // the scratch disk: /dev/vdb
  bool kvm = false;   // QEMU: under KVM, else TCG (a snapshot resumes under its own accelerator only)
  uint32_t nics = 0;  // network interfaces eth0.., virtio-net, no MTU advertised, TemplateMac's
  std::vector<VolumeShape> volumes;  // the disks after the scratch disk: /dev/vdc..
};

// 32 hex digits of a SHA-256 over the inputs and the identities of their files. A missing file is an error
// naming it.
Result<std::string> TemplateKey(const TemplateInputs& inputs);

struct Template {
  std::string key;
  std::string dir;
  vmm::SnapshotFiles snapshot;  // memory_path only for Firecracker
  std::string initrd_path;      // the template's own initramfs: a restored VM is started with it
  std::string image_digest;
  uint64_t disk_bytes = 0;  // what the template occupies on disk (allocated blocks)
  int64_t build_millis = 0;
};

// How the template VM is run while it is built.
struct BuildOptions {
  std::chrono::milliseconds boot_timeout{180000};  // VMM start -> the guest awaiting its task
  bool allow_kvm = true;
};

// What booting a template VM to its snapshot reported (template_boot.h does it for real).
struct BootResult {
  bool memory_file = false;  // the memory is in its own file (Firecracker)
  int64_t millis = 0;        // VMM start to the snapshot written
};
// Boots the template VM of `inputs` in the empty directory `dir`, leaves the initramfs and snapshot there
// (template_boot.h names the files) and ends the VM. The seam tests replace.
using BootFn =
    std::function<Result<BootResult>(const TemplateInputs&, const std::string& dir, const BuildOptions&)>;

class TemplateStore {
 public:
  // Templates live in <data_dir>/templates.
  explicit TemplateStore(std::string data_dir, BootFn boot = {});

  const std::string& dir() const { return dir_; }

  // The complete template of `key`, if there is one.
  std::optional<Template> Find(const std::string& key) const;

  // Builds the template of `inputs` and returns it; an existing one is returned as it is. One build per key:
  // a concurrent caller (a thread, or another process on the data dir) waits for the first one's lock and
  // then finds its template. Nothing of a failed build is left.
  Result<Template> Build(const TemplateInputs& inputs, const BuildOptions& options) const;

  // Removes the template of `key` (one that failed to restore). A missing one is OK.
  Status Remove(const std::string& key) const;

  // Removes every template whose inputs are gone or changed (its image was removed, its kernel, initramfs or
  // VMM replaced) and what interrupted builds left. Returns how many templates were removed.
  Result<int> CollectStale() const;

  // Every complete template.
  std::vector<Template> List() const;

 private:
  std::string dir_;
  BootFn boot_;
};

}  // namespace nfc::warm
