// The guest side of warm start (docs/warm-start.md): a template VM booted with `await_task` waits in
// PHASE_AWAITING_TASK, is snapshotted there, and every VM restored from it is handed its own task here.
// Before the task starts, what the restored VMs would otherwise share with the template and with each other
// is made theirs: the kernel RNG gets the host's entropy and reseeds at once, the clock is set from the host
// (the template's clock stopped when it was snapshotted), and the boot id is drawn again (after the reseed,
// so it differs between siblings). Then the start goes on exactly as after a cold boot.
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/random.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "base/log.h"
#include "init/common/system.h"
#include "init/guest/guest_init.h"

namespace nfc::init::guest {
namespace {

constexpr size_t kMinEntropyBytes = 32;

// RNDADDENTROPY credits the bytes to the input pool; RNDRESEEDCRNG makes the CRNG (getrandom, /dev/urandom,
// /proc/sys/kernel/random/uuid) draw from it now instead of at its next scheduled reseed.
Status SeedKernelRandom(const std::string& entropy) {
  int fd = ::open("/dev/urandom", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Error::Errno("open /dev/urandom");
  UniqueFd guard(fd);
  std::vector<char> buf(sizeof(rand_pool_info) + entropy.size());
  auto* info = reinterpret_cast<rand_pool_info*>(buf.data());
  info->entropy_count = static_cast<int>(entropy.size() * 8);
  info->buf_size = static_cast<int>(entropy.size());
  std::memcpy(buf.data() + sizeof(rand_pool_info), entropy.data(), entropy.size());
  if (::ioctl(fd, RNDADDENTROPY, info) != 0) return Error::Errno("ioctl(RNDADDENTROPY)");
  if (::ioctl(fd, RNDRESEEDCRNG) != 0) return Error::Errno("ioctl(RNDRESEEDCRNG)");
  return Ok();
}

Status SetRealtimeClock(int64_t unix_ns) {
  timespec ts{static_cast<time_t>(unix_ns / 1000000000), static_cast<long>(unix_ns % 1000000000)};
  if (::clock_settime(CLOCK_REALTIME, &ts) != 0) return Error::Errno("clock_settime(CLOCK_REALTIME)");
  return Ok();
}

// The kernel may still hold blocks it read from the template's disks (probing a disk reads its first page).
// The task's scratch disk and volumes are other files behind the same devices: those blocks must go before
// anything mounts them. The root disk is the template's own image, its blocks stay valid.
Status DropTemplateBlockCaches(const nfc::guest::TaskSpec& spec) {
  std::vector<std::string> devices;
  if (!spec.scratch.device.empty()) devices.push_back(spec.scratch.device);
  for (const auto& m : spec.mounts) {
    if (m.source.rfind("/dev/", 0) == 0) devices.push_back(m.source);
  }
  for (const auto& d : spec.devices) devices.push_back(d.source);
  for (const auto& device : devices) {
    UniqueFd fd(::open(device.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return Error::Errno("open " + device);
    if (::ioctl(fd.get(), BLKFLSBUF) != 0) return Error::Errno("ioctl(BLKFLSBUF) " + device);
  }
  return Ok();
}

}  // namespace

Status GuestInit::AcceptTask(const pb::TaskDelivery& d) {
  if (phase_ != Phase::kAwaitingTask) {
    return Error::FailedPrecondition("this guest is not a warm-start template waiting for a task");
  }
  if (d.entropy().size() < kMinEntropyBytes) {
    return Error::InvalidArgument("task.entropy: " + std::to_string(d.entropy().size()) +
                                  " bytes; at least " + std::to_string(kMinEntropyBytes) + " are needed");
  }
  if (d.realtime_unix_ns() <= 0) {
    return Error::InvalidArgument("task.realtime_unix_ns: " + std::to_string(d.realtime_unix_ns()) +
                                  " is not a time");
  }
  auto spec = nfc::guest::ParseTaskSpec(d.spec_json());
  if (!spec.ok()) return std::move(spec).error().Context("task.spec_json");
  if (spec->await_task)
    return Error::InvalidArgument("task.spec_json: await_task is set: that is a template");
  NFC_RETURN_IF_ERROR(SeedKernelRandom(d.entropy()));
  NFC_RETURN_IF_ERROR(SetRealtimeClock(d.realtime_unix_ns()));
  NFC_RETURN_IF_ERROR(DropTemplateBlockCaches(*spec));
  if (getrandom(&boot_id_, sizeof boot_id_, 0) != sizeof boot_id_) return Error::Errno("getrandom");
  // The channel stays the template's (the host is talking over it); the rest is the task's.
  nfc::guest::ControlConfig channel = spec_.control;
  spec_ = std::move(spec).value();
  spec_.control.vsock_port = channel.vsock_port;
  spec_.control.serial_port = channel.serial_port;
  spec_.control.unix_socket = channel.unix_socket;
  return Ok();
}

void GuestInit::OnTaskDelivery(Connection& c, uint64_t request_id, const pb::TaskDelivery& delivery) {
  Status accepted = AcceptTask(delivery);
  SendReply(c, request_id, accepted);
  if (!accepted.ok()) return;
  log::Info("task delivered to a warm-start template", {{"task", spec_.task_id}});
  phase_ = Phase::kBooting;
  times_.config_loaded_ns = MonotonicNs();
  StartWorkload();
}

}  // namespace nfc::init::guest
