#include "task/shim_launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include "base/fs.h"
#include "base/log.h"
#include "shim/control_client.h"
#include "vmm/vmm.h"

namespace nfc::task {
namespace {

using namespace std::chrono_literals;

constexpr size_t kReplyLimit = 64 << 10;

// Reads `fd` to EOF (the shim's starter exits after relaying the reply), bounded.
Result<std::string> ReadReply(int fd) {
  std::string text;
  char buf[1024];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::Errno("read the task shim's readiness reply");
    if (n == 0) return text;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kReplyLimit) return Error::Internal("the task shim's readiness reply is over 64 KiB");
  }
}

// Waits up to `patience` for `process` to end; true when it did.
bool AwaitEnd(const ProcessIdentity& process, std::chrono::milliseconds patience) {
  auto deadline = std::chrono::steady_clock::now() + patience;
  while (process.IsAlive()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

Status KillAndAwait(const ProcessIdentity& process, std::string_view what) {
  if (::kill(process.pid, SIGKILL) != 0 && errno != ESRCH)
    return Error::Errno("kill " + std::string(what) + " " + std::to_string(process.pid));
  if (!AwaitEnd(process, 5s))
    return Error::Internal(std::string(what) + " " + std::to_string(process.pid) +
                           " survived SIGKILL for 5 s");
  return Ok();
}

std::optional<ProcessIdentity> RecordedShim(const shim::TaskDir& dir) {
  auto text = fs::ReadFile(dir.ShimPid(), 256);
  if (!text.ok()) return std::nullopt;
  ProcessIdentity id;
  char* end = nullptr;
  id.pid = static_cast<pid_t>(std::strtol(text->c_str(), &end, 10));
  if (end == text->c_str() || id.pid <= 1) return std::nullopt;
  id.start_time = std::strtoull(end, nullptr, 10);
  return id;
}

class ProcessShimLauncher final : public ShimLauncher {
 public:
  Status Check() override { return FindShimBinary().ok() ? Ok() : FindShimBinary().error(); }

  Result<shim::ShimReady> Launch(const shim::TaskDir& dir, const std::string& netns_path) override {
    NFC_ASSIGN_OR_RETURN(std::string binary, FindShimBinary());
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return Error::Errno("pipe for the task shim's readiness reply");
    UniqueFd read_end(out[0]), write_end(out[1]);
    SpawnOptions so;
    so.argv = {binary, "start", dir.root};
    so.stdout_fd = write_end.get();
    so.netns_path = netns_path;
    auto child = Spawn(so);
    write_end.Reset();
    if (!child.ok()) return std::move(child).error().Context("start nomad-fc-shim");
    auto reply = ReadReply(read_end.get());
    // The starter exits right after relaying the reply (the detached shim lives on); reap it either way.
    auto waited = WaitForExit(child->pid);
    if (!reply.ok()) return std::move(reply).error();
    if (!waited.ok()) return std::move(waited).error().Context("the task shim's starter");
    auto ready = shim::DecodeReadiness(*reply);
    if (!ready.ok()) {
      Error e = std::move(ready).error();
      return Error(e.code(), "the VM did not start: " + e.message() + " (see " + dir.ShimLog() + ")");
    }
    return ready;
  }

  Status Stop(const shim::TaskDir& dir, std::optional<ProcessIdentity> shim) override {
    return StopTaskProcesses(dir, shim);
  }
};

}  // namespace

std::unique_ptr<ShimLauncher> MakeShimLauncher() {
  return std::make_unique<ProcessShimLauncher>();
}

Result<std::string> FindShimBinary() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("NFC_SHIM_PATH"); env && *env) candidates.push_back(env);
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    std::string dir(self, static_cast<size_t>(n));
    dir = dir.substr(0, dir.rfind('/'));
    for (const char* rel : {"/nomad-fc-shim", "/../shim/nomad-fc-shim", "/../src/shim/nomad-fc-shim",
                            "/../lib/nomad-firecracker/nomad-fc-shim"}) {
      candidates.push_back(dir + rel);
    }
  }
  candidates.push_back("/usr/lib/nomad-firecracker/nomad-fc-shim");
  candidates.push_back("/usr/local/lib/nomad-firecracker/nomad-fc-shim");
  for (const auto& c : candidates) {
    if (::access(c.c_str(), X_OK) == 0) return c;
  }
  return Error::NotFound(
      "nomad-fc-shim not found (looked in $NFC_SHIM_PATH, beside the driver binary and in "
      "/usr/lib/nomad-firecracker); install it there");
}

Status StopTaskProcesses(const shim::TaskDir& dir, std::optional<ProcessIdentity> shim) {
  Status first = Ok();
  if (!shim) shim = RecordedShim(dir);
  if (shim && shim->pid > 1 && shim->IsAlive()) {
    // Asked first: the shim kills its VMM and records the exit. A shim that does not answer is killed.
    Status asked = shim::ControlClient(dir.ControlSocket()).Shutdown();
    if (!asked.ok() || !AwaitEnd(*shim, 5s)) first = KillAndAwait(*shim, "task shim");
  }
  // A VMM orphaned by a killed shim (the shim records it right after the VMM started).
  auto text = fs::ReadFile(dir.VmmRecord(), 64 << 10);
  if (!text.ok()) return first;
  auto record = vmm::VmRecord::FromJson(*text);
  if (!record.ok()) return first;
  ProcessIdentity vmm{record->pid, record->start_time};
  if (vmm.pid > 1 && vmm.IsAlive()) {
    log::Warn("killing an orphaned VMM", {{"task_dir", dir.root}, {"pid", record->pid}});
    Status killed = KillAndAwait(vmm, "VMM");
    if (first.ok()) first = std::move(killed);
  }
  return first;
}

}  // namespace nfc::task
