// Provisioning a start: one transaction that owns everything a StartTask creates (image lease, task dir with
// its start record, scratch disk, network attachment, boot files, shim) and undoes all of it, newest first,
// unless Commit() ran. Commit writes driver_state.json durably: a task dir without it is, to the next plugin
// instance, an interrupted start to remove (Manager::Init), so a start whose record could not be written must
// fail and leave nothing rather than run a VM nobody will find again.
//
// The OS is reached through the seams in StartDeps (files through nfc::Env, images through ImageSource, the
// shim through ShimLauncher), so the whole pipeline runs in unit tests with injected failures
// (manager_test.cc).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/error.h"
#include "image/store.h"
#include "sandbox/cgroup.h"
#include "sandbox/uid_pool.h"
#include "shim/readiness.h"
#include "shim/task_dir.h"
#include "task/driver_state.h"
#include "task/network.h"
#include "task/plan.h"
#include "task/shim_launcher.h"

namespace nfc::task {

// Where images come from: the image store in production (opened on first use), a stand-in in tests.
class ImageSource {
 public:
  virtual ~ImageSource() = default;
  // Resolves (pulls and converts when needed) and leases the image to options.lease_holder.
  virtual Result<image::ImageHandle> Resolve(std::string_view reference, const image::PullOptions& options,
                                             const image::ProgressFn& progress) = 0;
  virtual Status ReleaseLease(std::string_view manifest_digest, std::string_view holder) = 0;
  // The plugin's image GC: removes the images no task has held for `delay` (image::Store::CollectUnused).
  virtual Result<image::PruneReport> CollectUnused(std::chrono::milliseconds delay) = 0;
};

// How the network of a task is attached and detached (task/network.h in production).
struct NetworkOps {
  std::function<Result<TaskNetwork>(const driver::NomadTask&, const NetworkPolicy&,
                                    const std::string& task_dir)>
      attach = AttachTaskNetwork;
  std::function<Status(const std::string& netns_path, const std::string& tap, const std::string& task_dir)>
      detach = DetachTaskNetwork;
};

// How a sandboxed VMM's cgroup is made and removed (sandbox/cgroup.h on the host's cgroupfs in production).
struct CgroupOps {
  // <parent>/<name> with `limits`; the cgroup.procs files the VMM joins.
  std::function<Result<std::vector<std::string>>(const std::string& parent, const std::string& name,
                                                 const sandbox::CgroupLimits& limits)>
      create = CreateHostCgroup;
  std::function<Status(const std::string& parent, const std::string& name)> remove = RemoveHostCgroup;

  static Result<std::vector<std::string>> CreateHostCgroup(const std::string& parent, const std::string& name,
                                                           const sandbox::CgroupLimits& limits);
  // Retries for a few seconds while the VMM's last process is still exiting.
  static Status RemoveHostCgroup(const std::string& parent, const std::string& name);
};

struct StartDeps {
  Env* env = nullptr;
  ImageSource* images = nullptr;
  ShimLauncher* launcher = nullptr;
  NetworkOps network;
  CgroupOps cgroups;
};

class StartTransaction {
 public:
  StartTransaction(const StartDeps& deps, std::string task_id);
  ~StartTransaction();  // rolls back unless committed
  StartTransaction(const StartTransaction&) = delete;
  StartTransaction& operator=(const StartTransaction&) = delete;

  Result<image::ImageHandle> LeaseImage(const VmPlan& plan, const image::ProgressFn& progress);
  // Creates the task dir (refusing an existing one) and writes its start record first thing.
  Status CreateTaskDir(const shim::TaskDir& dir, const StartRecord& record);
  Status CreateScratchDisk(uint64_t bytes, const std::string& template_dir);
  Result<TaskNetwork> AttachNetwork(const driver::NomadTask& task, const NetworkPolicy& policy);
  // A uid (and gid) of `range` for the VMM, leased to the task dir, and the empty jail it chroots into.
  Result<uint32_t> LeaseVmUid(const sandbox::UidRange& range);
  // The VMM's cgroup <parent>/<name> with `limits`; returns the cgroup.procs files the VMM joins.
  // Firecracker's jailer makes the VMM's cgroup <parent>/<name> and its jail at launch: a failed start
  // removes both.
  void ExpectJailedVmm(const std::string& cgroup_parent, const std::string& name,
                       const std::string& jail_dir);
  Result<std::vector<std::string>> CreateVmCgroup(const std::string& parent, const std::string& name,
                                                  const sandbox::CgroupLimits& limits);
  // The task's initramfs (the shared one plus the TaskSpec) and shim.json.
  Status WriteBootFiles(const BootPlan& plan, const std::string& base_initrd);
  Result<shim::ShimReady> LaunchShim(const std::string& netns_path);
  // Records the started task (driver_state.json, durably). On success nothing is undone any more.
  Status Commit(const DriverState& state);

 private:
  void OnRollback(std::string what, std::function<Status()> undo);
  void Rollback();

  StartDeps deps_;
  std::string task_id_;
  std::optional<shim::TaskDir> dir_;
  struct Undo {
    std::string what;
    std::function<Status()> run;
  };
  std::vector<Undo> undo_;
  bool committed_ = false;
};

}  // namespace nfc::task
