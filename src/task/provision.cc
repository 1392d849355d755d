#include "task/provision.h"

#include <chrono>
#include <thread>

#include "base/log.h"
#include "guest/initramfs_cpio.h"

namespace nfc::task {

StartTransaction::StartTransaction(const StartDeps& deps, std::string task_id)
    : deps_(deps), task_id_(std::move(task_id)) {}

StartTransaction::~StartTransaction() {
  if (!committed_) Rollback();
}

void StartTransaction::OnRollback(std::string what, std::function<Status()> undo) {
  undo_.push_back({std::move(what), std::move(undo)});
}

void StartTransaction::Rollback() {
  // Newest first: the shim goes before the network it uses, the task dir before the image lease it holds.
  for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
    Status s = it->run();
    if (!s.ok()) {
      log::Warn("could not undo part of a failed start",
                {{"task_id", task_id_}, {"step", it->what}, {"error", s.error().message()}});
    }
  }
  undo_.clear();
}

Result<image::ImageHandle> StartTransaction::LeaseImage(const VmPlan& plan,
                                                        const image::ProgressFn& progress) {
  auto image = deps_.images->Resolve(plan.image, plan.pull, progress);
  if (!image.ok()) return std::move(image).error().Context("image " + plan.image);
  std::string digest = image->manifest_digest;
  OnRollback("release the image lease",
             [this, digest] { return deps_.images->ReleaseLease(digest, task_id_); });
  return image;
}

Status StartTransaction::CreateTaskDir(const shim::TaskDir& dir, const StartRecord& record) {
  std::string parent = dir.root.substr(0, dir.root.rfind('/'));
  NFC_RETURN_IF_ERROR(deps_.env->MakeDir(parent, 0700));
  if (deps_.env->Exists(dir.root)) {
    return Error(ErrorCode::kAlreadyExists, "task directory " + dir.root + " already exists");
  }
  NFC_RETURN_IF_ERROR_CTX(deps_.env->MakeDir(dir.root, 0700), "create task directory " + dir.root);
  dir_ = dir;
  OnRollback("remove the task directory", [this] { return deps_.env->RemoveTree(dir_->root); });
  NFC_RETURN_IF_ERROR_CTX(deps_.env->WriteFileDurably(dir.StartRecord(), record.Encode(), 0600),
                          "start record");
  return Ok();
}

Status StartTransaction::CreateScratchDisk(uint64_t bytes, const std::string& template_dir) {
  // Inside the task dir: removed with it.
  NFC_RETURN_IF_ERROR_CTX(image::CreateScratchDisk(dir_->Scratch(), bytes, template_dir), "scratch disk");
  return Ok();
}

Result<TaskNetwork> StartTransaction::AttachNetwork(const driver::NomadTask& task,
                                                    const NetworkPolicy& policy) {
  auto net = deps_.network.attach(task, policy, dir_->root);
  if (!net.ok()) return std::move(net).error().Context("network");
  std::string netns = net->netns_path, tap = net->tap, owner = dir_->root;
  OnRollback("give the allocation its network back",
             [this, netns, tap, owner] { return deps_.network.detach(netns, tap, owner); });
  return net;
}

Result<uint32_t> StartTransaction::LeaseVmUid(const sandbox::UidRange& range) {
  // Inside the task dir: removed with it. Root's, empty: nothing for the VMM to find after its chroot.
  NFC_RETURN_IF_ERROR_CTX(deps_.env->MakeDir(dir_->Jail(), 0555), "jail directory");
  sandbox::UidPool pool(shim::VmUidPoolDir(shim::DataDirOf(*dir_)), range);
  NFC_ASSIGN_OR_RETURN(uint32_t uid, pool.Acquire(dir_->root));
  std::string owner = dir_->root;
  OnRollback("release the VMM's uid", [pool, uid, owner]() mutable { return pool.Release(uid, owner); });
  return uid;
}

Result<std::vector<std::string>> StartTransaction::CreateVmCgroup(const std::string& parent,
                                                                  const std::string& name,
                                                                  const sandbox::CgroupLimits& limits) {
  auto procs = deps_.cgroups.create(parent, name, limits);
  if (!procs.ok()) return std::move(procs).error().Context("the VMM's cgroup");
  OnRollback("remove the VMM's cgroup", [this, parent, name] { return deps_.cgroups.remove(parent, name); });
  return procs;
}

void StartTransaction::ExpectJailedVmm(const std::string& cgroup_parent, const std::string& name,
                                       const std::string& jail_dir) {
  OnRollback("remove the jailed VMM's cgroup",
             [this, cgroup_parent, name] { return deps_.cgroups.remove(cgroup_parent, name); });
  OnRollback("remove the VMM's jail", [this, jail_dir] { return deps_.env->RemoveTree(jail_dir); });
}

Result<std::vector<std::string>> CgroupOps::CreateHostCgroup(const std::string& parent,
                                                             const std::string& name,
                                                             const sandbox::CgroupLimits& limits) {
  NFC_ASSIGN_OR_RETURN(sandbox::CgroupHost host, sandbox::CgroupHost::Detect());
  NFC_ASSIGN_OR_RETURN(sandbox::VmCgroup cgroup, sandbox::VmCgroup::Create(host, parent, name, limits));
  return cgroup.ProcsFiles();
}

Status CgroupOps::RemoveHostCgroup(const std::string& parent, const std::string& name) {
  NFC_ASSIGN_OR_RETURN(sandbox::CgroupHost host, sandbox::CgroupHost::Detect());
  sandbox::VmCgroup cgroup = sandbox::VmCgroup::Existing(host, parent, name);
  Status removed = cgroup.Remove();
  for (int i = 0; i < 50 && !removed.ok() && removed.error().code() == ErrorCode::kFailedPrecondition; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    removed = cgroup.Remove();
  }
  return removed;
}

Status StartTransaction::WriteBootFiles(const BootPlan& plan, const std::string& base_initrd) {
  NFC_RETURN_IF_ERROR(guest::WriteTaskInitramfs(base_initrd, plan.spec, dir_->Initramfs()));
  // Here, not in the plan: it checks the files the VM boots from, the initramfs just written included.
  NFC_RETURN_IF_ERROR(vmm::ValidateConfig(plan.shim.vm));
  NFC_RETURN_IF_ERROR_CTX(deps_.env->WriteFileDurably(dir_->ShimConfig(), plan.shim.ToJson(), 0600),
                          "shim config");
  return Ok();
}

Result<shim::ShimReady> StartTransaction::LaunchShim(const std::string& netns_path) {
  // Registered before the launch: a shim that fails after starting its VMM may still be around (or have left
  // an orphaned VMM), and its shim.pid / vmm.json lead Stop to it.
  auto shim_id = std::make_shared<std::optional<ProcessIdentity>>();
  OnRollback("stop the task shim", [this, shim_id] { return deps_.launcher->Stop(*dir_, *shim_id); });
  NFC_ASSIGN_OR_RETURN(shim::ShimReady ready, deps_.launcher->Launch(*dir_, netns_path));
  *shim_id = ready.shim;
  return ready;
}

Status StartTransaction::Commit(const DriverState& state) {
  NFC_RETURN_IF_ERROR_CTX(deps_.env->WriteFileDurably(dir_->DriverState(), state.Encode(), 0600),
                          "record the started task (driver state)");
  committed_ = true;
  undo_.clear();
  return Ok();
}

}  // namespace nfc::task
