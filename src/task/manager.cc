#include "task/manager.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "base/clock.h"
#include "base/fs.h"
#include "base/log.h"
#include "base/process.h"
#include "driver/host_probe.h"
#include "sandbox/uid_pool.h"
#include "shim/exit_record.h"
#include "shim/task_dir.h"
#include "task/manager_task.h"
#include "task/signals.h"
#include "vmm/qemu/qemu_vmm.h"

namespace nfc::task {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

std::string RandomVmId() {
  std::random_device rd;
  static const char* hex = "0123456789abcdef";
  std::string out = "nfc-";
  for (int i = 0; i < 8; i++) {
    unsigned v = rd() & 0xff;
    out += hex[v >> 4];
    out += hex[v & 15];
  }
  return out;
}

int64_t MillisBetween(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}

// "exit code 1, signal SIGKILL, OOM killed: why" for logs.
std::string Describe(const shim::ExitResult& r) {
  std::string s = "exit code " + std::to_string(r.exit_code);
  if (r.signal) s += ", signal " + SignalName(r.signal);
  if (r.oom_killed) s += ", OOM killed";
  if (!r.err.empty()) s += ": " + r.err;
  return s;
}

// The image store under data_dir, opened on the first start that needs it (Configure may not create files).
class StoreImages final : public ImageSource {
 public:
  explicit StoreImages(std::function<driver::PluginConfig()> config) : config_(std::move(config)) {}

  Result<image::ImageHandle> Resolve(std::string_view reference, const image::PullOptions& options,
                                     const image::ProgressFn& progress) override {
    NFC_ASSIGN_OR_RETURN(image::Store * store, Open());
    return store->Resolve(reference, options, progress);
  }
  Status ReleaseLease(std::string_view digest, std::string_view holder) override {
    NFC_ASSIGN_OR_RETURN(image::Store * store, Open());
    return store->ReleaseLease(digest, holder);
  }
  Result<image::PruneReport> CollectUnused(std::chrono::milliseconds delay) override {
    NFC_ASSIGN_OR_RETURN(image::Store * store, Open());
    return store->CollectUnused(delay);
  }

 private:
  Result<image::Store*> Open() {
    std::lock_guard<std::mutex> lock(mu_);
    if (store_) return store_.get();
    driver::PluginConfig config = config_();
    image::StoreOptions o;
    o.root = image::StoreRoot(config.data_dir);
    o.max_bytes = config.image_cache_bytes;
    NFC_RETURN_IF_ERROR(fs::MakeDir(config.data_dir, 0700));
    NFC_ASSIGN_OR_RETURN(store_, image::Store::Open(o));
    return store_.get();
  }

  std::function<driver::PluginConfig()> config_;
  std::mutex mu_;
  std::unique_ptr<image::Store> store_;
};

}  // namespace

StartHost ProbeStartHost(const driver::PluginConfig& config) {
  StartHost host;
  host.machine = HostFacts::Detect();
  if (auto fc = driver::ResolveProgram(config.firecracker_path); fc.ok()) host.firecracker_binary = *fc;
  if (auto qemu = driver::ResolveProgram(config.qemu_path); qemu.ok()) host.qemu_binary = *qemu;
  if (auto jailer = driver::ResolveProgram(config.jailer_path); jailer.ok()) host.jailer_binary = *jailer;
  return host;
}

Manager::Manager(ManagerDeps deps) : deps_(std::move(deps)) {
  if (!deps_.env) deps_.env = &DefaultEnv();
  if (!deps_.images) {
    deps_.images = std::make_unique<StoreImages>([this] {
      std::lock_guard<std::mutex> lock(mu_);
      return config_;
    });
  }
  if (!deps_.launcher) deps_.launcher = MakeShimLauncher();
  if (!deps_.probe_host) deps_.probe_host = ProbeStartHost;
  if (!deps_.new_vm_id) deps_.new_vm_id = RandomVmId;
  if (!deps_.probe_kvm) {
    deps_.probe_kvm = [](const std::string& binary, const std::string& kernel) {
      return vmm::qemu::ProbeKvm(binary, kernel).usable;
    };
  }
}

Manager::~Manager() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (image_gc_.joinable()) image_gc_.join();
  if (sweeper_.joinable()) sweeper_.join();
}

namespace {

// How often the image GC looks: often enough that an image goes within a quarter of image_delay (at most
// 30 s) of becoming due, and not more than once a second.
std::chrono::milliseconds ImageGcPeriod(std::chrono::milliseconds delay) {
  return std::clamp<std::chrono::milliseconds>(delay / 4, std::chrono::seconds(1), std::chrono::seconds(30));
}

}  // namespace

void Manager::RunImageGc(driver::PluginConfig::ImageGc gc) {
  const auto period = ImageGcPeriod(gc.image_delay);
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_cv_.wait_for(lock, period, [this] { return stopping_; })) {
    lock.unlock();
    auto report = deps_.images->CollectUnused(gc.image_delay);
    if (!report.ok()) {
      log::Warn("image gc failed", {{"error", report.error().message()}});
    } else if (!report->removed_images.empty()) {
      log::Info("image gc removed unused images",
                {{"images", static_cast<int64_t>(report->removed_images.size())},
                 {"blobs", static_cast<int64_t>(report->removed_blob_count)},
                 {"freed_bytes", static_cast<int64_t>(report->freed_bytes)}});
    }
    CollectStaleTemplates();
    lock.lock();
  }
}

// Templates go with their image (its root file is gone) and when their kernel, initramfs or VMM changed.
void Manager::CollectStaleTemplates() {
  driver::PluginConfig config;
  {
    std::lock_guard<std::mutex> lock(mu_);
    config = config_;
  }
  auto removed = Templates(config).CollectStale();
  if (!removed.ok()) log::Warn("warm-start template gc failed", {{"error", removed.error().message()}});
}

void Manager::SetEventSink(std::function<void(driver::TaskEvent)> sink) {
  std::lock_guard<std::mutex> lock(mu_);
  sink_ = std::move(sink);
}

Status Manager::Configure(const driver::PluginConfig& config) {
  std::lock_guard<std::mutex> lock(mu_);
  config_ = config;
  configured_ = true;
  return Ok();
}

Status Manager::Init() {
  driver::PluginConfig config;
  {
    std::lock_guard<std::mutex> lock(mu_);
    config = config_;
  }
  // Only the runtime instance gets here: creating directories is allowed now (never in Configure).
  NFC_RETURN_IF_ERROR(deps_.env->MakeDir(config.data_dir, 0700));
  NFC_RETURN_IF_ERROR(deps_.env->MakeDir(config.data_dir + "/tasks", 0700));
  // In the background: ending a half-started shim can take seconds (its boot is cancelled, its VMM killed),
  // and Nomad's Init call has a deadline.
  std::lock_guard<std::mutex> lock(mu_);
  if (!sweeper_.joinable()) {
    sweeper_ = std::thread([this, data_dir = config.data_dir] {
      RemoveInterruptedStarts(data_dir);
      CollectStaleTemplates();
    });
  }
  if (config.gc.image && !image_gc_.joinable())
    image_gc_ = std::thread([this, gc = config.gc] { RunImageGc(gc); });
  return Ok();
}

void Manager::RemoveInterruptedStarts(const std::string& data_dir) {
  std::string tasks = data_dir + "/tasks";
  std::vector<std::string> names;
  if (DIR* d = ::opendir(tasks.c_str())) {
    while (auto* e = ::readdir(d)) {
      if (e->d_name[0] != '.') names.push_back(e->d_name);
    }
    ::closedir(d);
  }
  for (const auto& name : names) {
    shim::TaskDir dir{tasks + "/" + name};
    if (deps_.env->Exists(dir.DriverState())) continue;  // a complete start: Nomad may recover it
    auto text = deps_.env->ReadFile(dir.StartRecord(), 64 << 10);
    if (!text.ok()) continue;  // just created by a live StartTask (the record follows the mkdir), or not ours
    auto record = StartRecord::Decode(*text);
    if (!record.ok() || record->starter.IsAlive()) continue;  // unreadable, or still in flight
    DriverState state;
    state.task_id = record->task_id;
    state.task_dir = dir.root;
    state.control_socket = dir.ControlSocket();
    state.exit_record = dir.ExitRecord();
    state.image_digest = record->image_digest;
    state.netns_path = record->netns_path;
    state.tap_name = record->tap;
    state.cgroup = record->cgroup;
    state.jail_dir = record->jail_dir;
    log::Warn("removing a task whose StartTask was interrupted by the death of its plugin process",
              {{"task_id", state.task_id}, {"task_dir", dir.root}, {"plugin_pid", record->starter.pid}});
    if (Status s = RemoveTaskResources(state); !s.ok()) {
      log::Warn("could not remove all of an interrupted start",
                {{"task_id", state.task_id}, {"error", s.error().message()}});
    }
  }
  // Leases whose task directory is gone (an interrupted start, a crash during a destroy).
  auto reclaimed = sandbox::UidPool(shim::VmUidPoolDir(data_dir), {}).ReclaimOrphans();
  if (!reclaimed.ok()) {
    log::Warn("could not reclaim VMM uid leases", {{"error", reclaimed.error().message()}});
  } else if (*reclaimed > 0) {
    log::Info("reclaimed VMM uid leases of removed tasks", {{"count", *reclaimed}});
  }
}

void Manager::Emit(const driver::NomadTask& t, std::string message,
                   std::map<std::string, std::string> annotations) {
  std::function<void(driver::TaskEvent)> sink;
  {
    std::lock_guard<std::mutex> lock(mu_);
    sink = sink_;
  }
  log::Info(message, {{"task_id", t.id}});
  if (!sink) return;
  driver::TaskEvent e;
  e.task_id = t.id;
  e.alloc_id = t.alloc_id;
  e.task_name = t.name;
  e.timestamp = std::chrono::system_clock::now();
  e.message = std::move(message);
  e.annotations = std::move(annotations);
  sink(std::move(e));
}

StartDeps Manager::StartDepsFor() {
  return StartDeps{deps_.env, deps_.images.get(), deps_.launcher.get(), deps_.network, deps_.cgroups};
}

std::shared_ptr<Manager::Task> Manager::Find(const std::string& task_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tasks_.find(task_id);
  return it == tasks_.end() ? nullptr : it->second;
}

std::optional<Manager::StartTimings> Manager::Timings(const std::string& task_id) const {
  auto t = Find(task_id);
  if (!t) return std::nullopt;
  return t->timings;
}

std::optional<DriverState> Manager::State(const std::string& task_id) const {
  auto t = Find(task_id);
  if (!t) return std::nullopt;
  return t->state;
}

Result<driver::PluginConfig> Manager::ConfigForNewTask(const std::string& task_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (tasks_.count(task_id))
    return Error(ErrorCode::kAlreadyExists, "task " + task_id + " is already running");
  return config_;
}

Result<VmPlan> Manager::PlanChecked(const driver::NomadTask& t, const driver::TaskConfig& tc,
                                    const driver::PluginConfig& config) {
  NFC_ASSIGN_OR_RETURN(VmPlan vm, PlanVm(t, tc, config, deps_.probe_host(config)));
  if (vm.backend == vmm::Backend::kQemu) vm.kvm_usable = deps_.probe_kvm(vm.vmm_binary, vm.kernel_path);
  NFC_RETURN_IF_ERROR(CheckArtifacts(vm));
  return vm;
}

Status Manager::CheckArtifacts(const VmPlan& plan) {
  NFC_RETURN_IF_ERROR_CTX(driver::CheckReadableFile(plan.kernel_path), "guest kernel");
  NFC_RETURN_IF_ERROR_CTX(driver::CheckReadableFile(plan.base_initrd_path), "guest initramfs");
  return deps_.launcher->Check();
}

// Each volume's disk, made when it is a directory's first use. Not undone on a failed start: a disk image in
// a volume directory is the volume's data from the moment it exists (volume/volume.h).
Result<std::vector<volume::Disk>> Manager::PrepareVolumes(const driver::NomadTask& t, const VmPlan& vm) {
  std::vector<volume::Disk> disks;
  for (size_t i = 0; i < vm.volumes.size(); i++) {
    const auto& request = vm.volumes[i];
    NFC_ASSIGN_OR_RETURN(volume::Disk disk, volume::Prepare(request, vm.volume_image_bytes));
    // One disk given twice would be two block devices of one filesystem in the guest: fine for readers only.
    for (size_t j = 0; j < disks.size(); j++) {
      if (disks[j].path == disk.path && (!request.read_only || !vm.volumes[j].read_only)) {
        return Error::InvalidArgument(request.field + ": " + disk.path + " is also " + vm.volumes[j].field +
                                      "; a volume written to can be mounted once per task");
      }
    }
    if (disk.created) {
      Emit(t, "Created the volume's disk image",
           {{"path", disk.path}, {"size_bytes", std::to_string(vm.volume_image_bytes)}});
    }
    disks.push_back(std::move(disk));
  }
  return disks;
}

// The volumes, the image, the task dir with its start record, the scratch disk and the network, in that
// order: the start record names the image lease and the TAP before either can leak.
Result<Provisioned> Manager::Provision(StartTransaction& txn, const driver::NomadTask& t, const VmPlan& vm,
                                       const driver::PluginConfig& config, uint64_t scratch_bytes) {
  Provisioned p;
  // First: a volume in use fails the start before a download, and creates nothing to undo.
  NFC_ASSIGN_OR_RETURN(p.volumes, PrepareVolumes(t, vm));
  Emit(t, "Downloading image", {{"image", vm.image}});
  bool building_reported = false;
  NFC_ASSIGN_OR_RETURN(p.image, txn.LeaseImage(vm, [&](const image::Progress& progress) {
    if (progress.phase == image::Progress::Phase::kBuildingRootfs && !building_reported) {
      building_reported = true;
      Emit(t, "Building root filesystem", {{"image", vm.image}});
    }
  }));
  p.dir = shim::TaskDirFor(config.data_dir, t.id);
  p.vm_id = deps_.new_vm_id();
  StartRecord record{t.id, p.image.manifest_digest, {}, "", vm.planned_tap, {}};
  // No namespace: a host-mode link, in the plugin's own namespace.
  if (!record.tap.empty() && t.network && t.network->mode == driver::NetworkIsolation::Mode::kGroup) {
    record.netns_path = t.network->netns_path;
  }
  // Named before it exists, so an interrupted start's cleanup removes it (removing none is fine).
  if (vm.sandbox) record.cgroup = {vm.cgroup_parent, p.vm_id};
  if (!vm.jailer_binary.empty()) {
    p.jail_dir = vmm::JailerDir(shim::JailerBaseDir(config.data_dir), vm.vmm_binary, p.vm_id);
    record.jail_dir = p.jail_dir;
  }
  NFC_ASSIGN_OR_RETURN(record.starter, IdentifyProcess(::getpid()));
  NFC_RETURN_IF_ERROR(txn.CreateTaskDir(p.dir, record));
  NFC_RETURN_IF_ERROR(txn.CreateScratchDisk(scratch_bytes, config.data_dir + "/scratch-templates"));
  NFC_ASSIGN_OR_RETURN(p.network, txn.AttachNetwork(t, vm.network_policy));
  if (vm.sandbox) {
    NFC_ASSIGN_OR_RETURN(uint32_t uid, txn.LeaseVmUid(vm.vm_uids));
    p.vm_uid = uid;
    // Firecracker's jailer makes the cgroup itself (with the same name and limits).
    if (vm.jailer_binary.empty()) {
      NFC_ASSIGN_OR_RETURN(p.cgroup_procs, txn.CreateVmCgroup(vm.cgroup_parent, p.vm_id, vm.cgroup_limits));
    } else {
      txn.ExpectJailedVmm(vm.cgroup_parent, p.vm_id, p.jail_dir);
    }
  }
  if (p.network.mode == "group" || p.network.mode == "host") {
    // The guest cannot reach the host's local resolver; GuestDns keeps the host's other servers.
    p.host_resolv_conf = deps_.env->ReadFile("/etc/resolv.conf", 64 << 10).value_or("");
  }
  return p;
}

Result<driver::StartedTask> Manager::StartTask(const driver::NomadTask& t, const driver::TaskConfig& tc) {
  std::optional<WarmFailure> warm_failed;
  auto started = StartOnce(t, tc, &warm_failed);
  if (started.ok() || !warm_failed) return started;
  // The restored VM came up but never ran the task (its guest refused the delivery or did not answer): the
  // attempt was rolled back and its template removed. This task boots cold, which queues the rebuild.
  log::Warn("warm start failed; booting cold",
            {{"task_id", t.id}, {"template", warm_failed->key}, {"error", warm_failed->reason}});
  Emit(t, "Warm start failed; booted cold", {{"reason", warm_failed->reason}});
  return StartOnce(t, tc, nullptr);
}

Result<driver::StartedTask> Manager::StartOnce(const driver::NomadTask& t, const driver::TaskConfig& tc,
                                               std::optional<WarmFailure>* warm_failed) {
  auto t0 = Clock::now();
  NFC_ASSIGN_OR_RETURN(driver::PluginConfig config, ConfigForNewTask(t.id));
  // plan: every policy decision, before anything is downloaded or created.
  NFC_ASSIGN_OR_RETURN(VmPlan vm, PlanChecked(t, tc, config));
  auto t_planned = Clock::now();
  // provision: undone by the transaction unless the start commits.
  StartTransaction txn(StartDepsFor(), t.id);
  NFC_ASSIGN_OR_RETURN(Provisioned provisioned, Provision(txn, t, vm, config, ScratchBytes(tc)));
  auto t_image = Clock::now();
  NFC_ASSIGN_OR_RETURN(BootPlan boot, PlanBoot(vm, t, tc, provisioned));
  WarmStartPlan warm = PrepareWarmStart(t, tc, vm, provisioned, config, boot);
  NFC_RETURN_IF_ERROR(txn.WriteBootFiles(boot, vm.base_initrd_path));
  auto t_prepared = Clock::now();
  // launch: the shim answers once the workload runs (or the start failed, with its error code).
  std::map<std::string, std::string> booting = {{"backend", boot.state.backend},
                                                {"vcpus", std::to_string(vm.size.vcpus)},
                                                {"memory_mib", std::to_string(vm.size.memory_mib)},
                                                {"start", warm.found ? "warm" : "cold"}};
  if (warm.found) booting["template"] = warm.key;
  if (!warm.found) booting["cold_reason"] = warm.cold_reason;
  Emit(t, warm.found ? "Restoring VM from its warm-start template" : "Booting VM", booting);
  auto launched = txn.LaunchShim(boot.state.netns_path);
  if (!launched.ok()) {
    if (warm.found && warm_failed && launched.error().code() != ErrorCode::kCancelled) {
      *warm_failed =
          WarmFailure{warm.key, "the restored VM did not run its task: " + launched.error().message()};
      Status removed = Templates(config).Remove(warm.key);  // it would fail the next start the same way
      if (!removed.ok())
        log::Warn("could not remove a failed template", {{"error", removed.error().message()}});
    }
    return std::move(launched).error();
  }
  shim::ShimReady ready = std::move(launched).value();
  DriverState state = boot.state;
  state.shim = ready.shim;
  state.started_at_unix_nanos = ready.started_at_unix_nanos ? ready.started_at_unix_nanos : UnixNanosNow();
  NFC_RETURN_IF_ERROR(txn.Commit(state));
  auto t_running = Clock::now();
  StartTimings timings;
  timings.plan_millis = MillisBetween(t0, t_planned);
  timings.image_millis = MillisBetween(t_planned, t_image);
  timings.prepare_millis = MillisBetween(t_image, t_prepared);
  timings.shim_millis = std::min(ready.timings.vmm_started_millis, MillisBetween(t_prepared, t_running));
  timings.boot_millis = MillisBetween(t_prepared, t_running) - timings.shim_millis;
  timings.total_millis = MillisBetween(t0, t_running);
  timings.guest_init_millis = ready.timings.guest_init_started_millis;
  timings.guest_workload_millis = ready.timings.guest_workload_exec_millis;
  timings.warm = ready.mode.warm;
  timings.shim = ready.timings;
  AfterStart(t, warm, ready, config);
  return Register(t, state, timings);
}

driver::StartedTask Manager::Register(const driver::NomadTask& t, const DriverState& state,
                                      StartTimings timings) {
  auto task = std::make_shared<Task>(state);
  task->started_at =
      std::chrono::system_clock::time_point(std::chrono::nanoseconds(state.started_at_unix_nanos));
  task->timings = timings;
  task->handle.version = kTaskHandleVersion;
  task->handle.config = t;
  task->handle.state = driver::TaskState::kRunning;
  task->handle.driver_state = state.Encode();
  log::Info("task started", {{"task_id", t.id},
                             {"backend", state.backend},
                             {"total_ms", timings.total_millis},
                             {"image_ms", timings.image_millis},
                             {"boot_ms", timings.boot_millis}});
  driver::StartedTask started;
  started.handle = task->handle;
  // In host mode Nomad already advertises the host's address and ports, which reach the guest through DNAT.
  if (!state.address.empty() && state.network_mode == "group")
    started.network = driver::NetworkOverride{{}, state.address, false};
  std::lock_guard<std::mutex> lock(mu_);
  tasks_[t.id] = task;
  return started;
}

Status Manager::RecoverTask(const driver::TaskHandle& handle) {
  const std::string& id = handle.config.id;
  if (id.empty()) return Error::InvalidArgument("RecoverTask: the handle has no task id (handle.config.id)");
  if (Find(id)) return Ok();  // already known: reattached plugin instance, or a repeated call
  auto state = DriverState::Decode(handle.driver_state);
  if (!state.ok()) return std::move(state).error().Context("RecoverTask " + id);
  if (state->task_id != id) {
    return Error::InvalidArgument("RecoverTask: driver state belongs to task " + state->task_id + ", not " +
                                  id);
  }
  auto task = std::make_shared<Task>(*state);
  task->handle = handle;
  task->started_at =
      std::chrono::system_clock::time_point(std::chrono::nanoseconds(state->started_at_unix_nanos));
  // Reattach: the recorded shim must be alive (same pid *and* start time) and answer as that pid. Never boot.
  if (state->shim.IsAlive()) {
    auto info = task->client.Inspect();
    if (info.ok() && info->shim_pid == state->shim.pid) {
      log::Info("task recovered",
                {{"task_id", id}, {"shim_pid", state->shim.pid}, {"boot_id", info->guest_boot_id}});
      std::lock_guard<std::mutex> lock(mu_);
      tasks_.emplace(id, task);
      return Ok();
    }
    if (state->shim.IsAlive()) {  // alive but not answering (yet): never remove a task that may still run
      std::string why =
          info.ok() ? "answers as pid " + std::to_string(info->shim_pid) : info.error().message();
      return Error::Unavailable("RecoverTask " + id + ": the task shim (pid " +
                                std::to_string(state->shim.pid) + ") runs but does not answer: " + why);
    }
  }
  // The shim is gone. If it recorded an exit the task simply ended while we were away.
  auto record = shim::ReadExitRecord(state->exit_record);
  if (record.ok() && record->has_value()) {
    task->exit = **record;
    log::Info("task recovered as exited", {{"task_id", id}, {"result", Describe(**record)}});
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.emplace(id, task);
    return Ok();
  }
  // Gone without a record (a host reboot, a killed shim): the VM is lost. Its leftovers (an orphaned VMM, the
  // TAP, the image lease, the task dir) go now: this plugin instance does not know the task, so the
  // DestroyTask Nomad sends next would find nothing to remove.
  Status removed = RemoveTaskResources(*state);
  if (!removed.ok())
    log::Warn("leftovers of a lost task", {{"task_id", id}, {"error", removed.error().message()}});
  return Error::FailedPrecondition(
      "RecoverTask " + id + ": the task shim (pid " + std::to_string(state->shim.pid) +
      ") is gone and left no exit record; the VM is lost, the task must restart" +
      (removed.ok() ? " (what it left was removed)"
                    : " (removing what it left failed: " + removed.error().message() + ")"));
}

Result<shim::ExitResult> Manager::ResultFromDisk(const Task& task) const {
  auto record = shim::ReadExitRecord(task.state.exit_record);
  if (!record.ok()) return std::move(record).error();
  if (record->has_value()) return **record;
  return Error::Internal("the task shim (pid " + std::to_string(task.state.shim.pid) +
                         ") died without recording an exit (see " + task.state.task_dir + "/shim.log)");
}

ExitResult Manager::ResultOfGoneShim(const Task& task) {
  auto disk = ResultFromDisk(task);
  if (disk.ok()) return *disk;
  // The shim died (killed, or crashed) while its VM may run on: nobody would supervise, stop or log it any
  // more, so it is stopped now rather than at DestroyTask.
  ExitResult r{1, 0, false, disk.error().message(), 0};
  Status stopped = deps_.launcher->Stop(shim::TaskDir{task.state.task_dir}, task.state.shim);
  r.err += stopped.ok() ? "; its VM was stopped" : "; stopping its VM failed: " + stopped.error().message();
  log::Error("task shim died", {{"task_id", task.state.task_id}, {"error", r.err}});
  return r;
}

}  // namespace nfc::task
