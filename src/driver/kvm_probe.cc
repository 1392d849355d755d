#include "driver/kvm_probe.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/unique_fd.h"

namespace nfc::driver {
namespace {

constexpr uint64_t kCodeAddress = 0x1000;
constexpr uint16_t kProbePort = 0x10;
constexpr uint8_t kProbeValue = 0x42;

// The child's verdict travels as one fixed-size record: its first byte is the Result, the rest text.
struct Verdict {
  char result;
  char detail[255];
};

// Runs in the forked child: only syscalls and snprintf into the record, no allocation.
Verdict RunGuest(const char* device) {
  Verdict v{};
  auto say = [&v](KvmGuestProbe::Result r, const char* what, int err) {
    v.result = static_cast<char>(r);
    if (err != 0) {
      // strerrordesc_np, not strerror: no locale (and no lock) in a child forked from a threaded process.
      std::snprintf(v.detail, sizeof v.detail, "%s: %s", what, ::strerrordesc_np(err));
    } else {
      std::snprintf(v.detail, sizeof v.detail, "%s", what);
    }
    return v;
  };
  using R = KvmGuestProbe::Result;
  int kvm = ::open(device, O_RDWR | O_CLOEXEC);
  if (kvm < 0) return say(errno == ENOENT ? R::kAbsent : R::kNoAccess, device, errno);
  int api = ::ioctl(kvm, KVM_GET_API_VERSION, 0);
  if (api != KVM_API_VERSION) return say(R::kUnusable, "KVM_GET_API_VERSION (not a KVM device?)", errno);
  int vm = ::ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) return say(R::kUnusable, "KVM_CREATE_VM", errno);
  void* mem = ::mmap(nullptr, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return say(R::kUnusable, "mmap guest memory", errno);
  // mov al, 0x42 ; out 0x10, al ; hlt
  const unsigned char code[] = {0xb0, kProbeValue, 0xe6, kProbePort, 0xf4};
  std::memcpy(mem, code, sizeof code);
  kvm_userspace_memory_region region{};
  region.guest_phys_addr = kCodeAddress;
  region.memory_size = 0x1000;
  region.userspace_addr = reinterpret_cast<uint64_t>(mem);
  if (::ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
    return say(R::kUnusable, "KVM_SET_USER_MEMORY_REGION", errno);
  int vcpu = ::ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) return say(R::kUnusable, "KVM_CREATE_VCPU", errno);
  int run_size = ::ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size <= 0) return say(R::kUnusable, "KVM_GET_VCPU_MMAP_SIZE", errno);
  auto* run = static_cast<kvm_run*>(
      ::mmap(nullptr, static_cast<size_t>(run_size), PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0));
  if (run == MAP_FAILED) return say(R::kUnusable, "mmap kvm_run", errno);
  kvm_sregs sregs{};
  if (::ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) return say(R::kUnusable, "KVM_GET_SREGS", errno);
  sregs.cs.base = 0;
  sregs.cs.selector = 0;
  if (::ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) return say(R::kUnusable, "KVM_SET_SREGS", errno);
  kvm_regs regs{};
  regs.rip = kCodeAddress;
  regs.rflags = 0x2;  // bit 1 is reserved and always set
  if (::ioctl(vcpu, KVM_SET_REGS, &regs) < 0) return say(R::kUnusable, "KVM_SET_REGS", errno);

  if (::ioctl(vcpu, KVM_RUN, 0) < 0) return say(R::kUnusable, "KVM_RUN", errno);
  const auto* io_data = reinterpret_cast<const unsigned char*>(run) + run->io.data_offset;
  if (run->exit_reason != KVM_EXIT_IO || run->io.direction != KVM_EXIT_IO_OUT || run->io.port != kProbePort ||
      run->io.size != 1 || *io_data != kProbeValue) {
    char what[96];
    std::snprintf(what, sizeof what, "the probe guest's first exit was reason %u, not its port write",
                  run->exit_reason);
    return say(R::kUnusable, what, 0);
  }
  if (::ioctl(vcpu, KVM_RUN, 0) < 0) return say(R::kUnusable, "KVM_RUN after the port write", errno);
  if (run->exit_reason != KVM_EXIT_HLT) {
    char what[96];
    std::snprintf(what, sizeof what, "the probe guest's second exit was reason %u, not HLT",
                  run->exit_reason);
    return say(R::kUnusable, what, 0);
  }
  char what[64];
  std::snprintf(what, sizeof what, "a probe guest ran (KVM API %d)", api);
  return say(R::kUsable, what, 0);
}

}  // namespace

KvmGuestProbe ProbeKvmGuest(const std::string& device, std::chrono::milliseconds timeout) {
  KvmGuestProbe out;
  if (::access(device.c_str(), F_OK) != 0) {
    out.detail = device + " does not exist (no KVM on this host, or the module is not loaded)";
    return out;
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    out.result = KvmGuestProbe::Result::kUnusable;
    out.detail = std::string("pipe: ") + std::strerror(errno);
    return out;
  }
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  // A bare fork, not Spawn(): the child runs no program, only the ioctls above, and exits. It must not touch
  // the parent's locks or heap (the plugin has threads), which RunGuest does not.
  pid_t pid = ::fork();
  if (pid < 0) {
    out.result = KvmGuestProbe::Result::kUnusable;
    out.detail = std::string("fork: ") + std::strerror(errno);
    return out;
  }
  if (pid == 0) {
    Verdict v = RunGuest(device.c_str());
    ssize_t ignored = ::write(write_end.get(), &v, sizeof v);
    (void)ignored;  // the parent reports a missing verdict itself
    ::_exit(0);
  }
  write_end.Reset();
  Verdict v{};
  size_t got = 0;
  pollfd p{read_end.get(), POLLIN, 0};
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (got < sizeof v) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    ssize_t n = ::read(read_end.get(), reinterpret_cast<char*>(&v) + got, sizeof v - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  const bool complete = got == sizeof v;
  if (!complete) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!complete) {
    out.result = KvmGuestProbe::Result::kUnusable;
    out.detail = WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL
                     ? "the probe guest's process died of signal " + std::to_string(WTERMSIG(status))
                     : "the probe guest did not finish within " + std::to_string(timeout.count()) + " ms";
    return out;
  }
  v.detail[sizeof v.detail - 1] = '\0';
  out.result = static_cast<KvmGuestProbe::Result>(v.result);
  out.detail = v.detail;
  return out;
}

}  // namespace nfc::driver
