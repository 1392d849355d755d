// Stand-ins for the start pipeline's seams (image store, shim launcher), shared by the Manager's unit tests.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/process.h"
#include "task/provision.h"

namespace nfc::task::testing {

class FakeImages final : public ImageSource {
 public:
  explicit FakeImages(std::string rootfs) : rootfs_(std::move(rootfs)) {}
  Result<image::ImageHandle> Resolve(std::string_view reference, const image::PullOptions& options,
                                     const image::ProgressFn&) override {
    resolves++;
    if (fail) return *fail;
    image::ImageHandle h;
    h.reference = std::string(reference);
    h.manifest_digest = "sha256:feed";
    h.rootfs_path = rootfs_;
    h.config.cmd = {"/bin/sh"};
    leases.insert(options.lease_holder);
    return h;
  }
  Status ReleaseLease(std::string_view digest, std::string_view holder) override {
    EXPECT_EQ(digest, "sha256:feed");
    leases.erase(std::string(holder));
    return Ok();
  }
  Result<image::PruneReport> CollectUnused(std::chrono::milliseconds delay) override {
    std::lock_guard<std::mutex> lock(gc_mu);
    gc_delays.push_back(delay);
    return image::PruneReport{};
  }
  int resolves = 0;
  std::optional<Error> fail;
  std::mutex gc_mu;
  std::vector<std::chrono::milliseconds> gc_delays;  // one per GC round
  std::set<std::string> leases;

 private:
  std::string rootfs_;
};

// Launches a `sleep` standing in for the shim, so that the identity in the reply is a live process.
class FakeLauncher final : public ShimLauncher {
 public:
  ~FakeLauncher() override {
    for (pid_t pid : children_) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  Status Check() override { return Ok(); }
  Result<shim::ShimReady> Launch(const shim::TaskDir& dir, const std::string&) override {
    launches++;
    seen_shim_config = fs::Exists(dir.ShimConfig());
    seen_initramfs = fs::Exists(dir.Initramfs());
    seen_scratch = fs::Exists(dir.Scratch());
    if (fail) return *fail;
    SpawnOptions so;
    so.argv = {"/bin/sleep", "60"};
    NFC_ASSIGN_OR_RETURN(Child child, Spawn(so));
    children_.push_back(child.pid);
    shim::ShimReady ready;
    NFC_ASSIGN_OR_RETURN(ready.shim, IdentifyProcess(child.pid));
    ready.started_at_unix_nanos = 1700000000000000000;
    ready.timings.vmm_started_millis = 5;
    if (on_launch) NFC_RETURN_IF_ERROR(on_launch(dir, ready));
    return ready;
  }
  Status Stop(const shim::TaskDir&, std::optional<ProcessIdentity> shim) override {
    stops++;
    if (shim) {
      ::kill(shim->pid, SIGKILL);
      ::waitpid(shim->pid, nullptr, 0);
      std::erase(children_, shim->pid);
    }
    return Ok();
  }
  int launches = 0, stops = 0;
  bool seen_shim_config = false, seen_initramfs = false, seen_scratch = false;
  std::optional<Error> fail;
  // Plays the shim's part in the reply (a warm start, its fallback, a failed start).
  std::function<Status(const shim::TaskDir&, shim::ShimReady&)> on_launch;

 private:
  std::vector<pid_t> children_;
};

}  // namespace nfc::task::testing
