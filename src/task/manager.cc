#include "task/manager.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <thread>

#include "base/log.h"
#include "base/process.h"
#include "driver/host_probe.h"
#include "driver/task_config.h"
#include "guest/initramfs_cpio.h"
#include "guest/task_spec.h"
#include "shim/exit_record.h"
#include "shim/shim_config.h"
#include "shim/task_dir.h"
#include "task/env.h"
#include "task/manager_task.h"
#include "task/network.h"
#include "task/signals.h"
#include "task/sizing.h"
#include "task/stats.h"
#include "vmm/vmm.h"

namespace nfc::task {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

int64_t MillisSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

int64_t UnixNanosNow() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status MakeDir(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) return Error::Errno("mkdir " + path);
  return Ok();
}

std::string RandomHex(int bytes) {
  std::random_device rd;
  std::string out;
  static const char* hex = "0123456789abcdef";
  for (int i = 0; i < bytes; i++) {
    unsigned v = rd() & 0xff;
    out += hex[v >> 4];
    out += hex[v & 15];
  }
  return out;
}

vmm::Backend PickBackend(const driver::PluginConfig& config, std::optional<driver::Backend> task_backend,
                         std::string* binary) {
  driver::Backend b = task_backend.value_or(config.backend);
  if (b == driver::Backend::kAuto) {
    // Firecracker when it is installed, else QEMU (which probes KVM itself and falls back to TCG).
    b = driver::ResolveProgram(config.firecracker_path).ok() ? driver::Backend::kFirecracker
                                                             : driver::Backend::kQemu;
  }
  if (b == driver::Backend::kFirecracker) {
    auto p = driver::ResolveProgram(config.firecracker_path);
    *binary = p.ok() ? *p : config.firecracker_path;
    return vmm::Backend::kFirecracker;
  }
  auto p = driver::ResolveProgram(config.qemu_path);
  *binary = p.ok() ? *p : config.qemu_path;
  return vmm::Backend::kQemu;
}

// "exit status 1" style words for logs.
std::string Describe(const shim::ExitResult& r) {
  std::string s = "exit code " + std::to_string(r.exit_code);
  if (r.signal) s += ", signal " + SignalName(r.signal);
  if (r.oom_killed) s += ", OOM killed";
  if (!r.err.empty()) s += ": " + r.err;
  return s;
}

}  // namespace

Manager::Manager() = default;
Manager::~Manager() = default;

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
  NFC_RETURN_IF_ERROR(MakeDir(config.data_dir, 0700));
  NFC_RETURN_IF_ERROR(MakeDir(config.data_dir + "/tasks", 0700));
  RemoveInterruptedStarts(config.data_dir);
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
    if (::access(dir.DriverState().c_str(), F_OK) == 0) continue;  // a complete start: Nomad may recover it
    std::ifstream in(dir.root + "/" + std::string(kStartRecordFile));
    if (!in) continue;  // just created by a live StartTask (the record follows the mkdir), or not ours
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto record = StartRecord::Decode(text);
    if (!record.ok() || record->starter.IsAlive()) continue;  // unreadable, or still in flight
    DriverState state;
    state.task_id = record->task_id;
    state.task_dir = dir.root;
    state.control_socket = dir.ControlSocket();
    state.exit_record = dir.ExitRecord();
    state.image_digest = record->image_digest;
    state.netns_path = record->netns_path;
    state.tap_name = record->tap;
    std::ifstream pid_file(dir.ShimPid());
    pid_t pid = 0;
    unsigned long long start_time = 0;
    if (pid_file >> pid >> start_time) state.shim = ProcessIdentity{pid, start_time};
    log::Warn("removing a task whose StartTask was interrupted by the death of its plugin process",
              {{"task_id", state.task_id}, {"task_dir", dir.root}, {"plugin_pid", record->starter.pid}});
    if (Status s = RemoveTaskResources(state); !s.ok()) {
      log::Warn("could not remove all of an interrupted start",
                {{"task_id", state.task_id}, {"error", s.error().message()}});
    }
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

Result<image::Store*> Manager::Images() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!store_) {
    image::StoreOptions o;
    o.root = config_.data_dir + "/images";
    o.max_bytes = config_.image_cache_bytes;
    NFC_RETURN_IF_ERROR(MakeDir(config_.data_dir, 0700));
    NFC_ASSIGN_OR_RETURN(store_, image::Store::Open(o));
  }
  return store_.get();
}

Result<std::string> Manager::ShimBinary() const {
  // NFC_SHIM_PATH, then beside our own binary (and the build tree's src/shim), then the install location.
  // Never put nomad-fc-shim into Nomad's plugin_dir: Nomad would try to load it as a plugin.
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("NFC_SHIM_PATH"); env && *env) candidates.push_back(env);
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    std::string dir(self, static_cast<size_t>(n));
    dir = dir.substr(0, dir.rfind('/'));
    candidates.push_back(dir + "/nomad-fc-shim");
    candidates.push_back(dir + "/../shim/nomad-fc-shim");
    candidates.push_back(dir + "/../src/shim/nomad-fc-shim");
    candidates.push_back(dir + "/../lib/nomad-firecracker/nomad-fc-shim");
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

Result<driver::StartedTask> Manager::StartTask(const driver::NomadTask& t) {
  if (t.driver_config_msgpack.empty())
    return Error::InvalidArgument("task has no driver config (config { image = ... })");
  NFC_ASSIGN_OR_RETURN(driver::TaskConfig tc, driver::DecodeTaskConfigMsgpack(t.driver_config_msgpack));
  return StartDecoded(t, tc);
}

Result<driver::StartedTask> Manager::StartDecoded(const driver::NomadTask& t, const driver::TaskConfig& tc) {
  auto t0 = Clock::now();
  driver::PluginConfig config;
  {
    std::lock_guard<std::mutex> lock(mu_);
    config = config_;
    if (tasks_.count(t.id)) return Error(ErrorCode::kAlreadyExists, "task " + t.id + " is already running");
  }
  if (t.id.empty()) return Error::InvalidArgument("task has no id");
  // 1. Sizing, backend, guest artifacts, env: all checked before anything is created.
  SizingInput sizing;
  sizing.vcpus_config = static_cast<int>(tc.vcpu_count.value_or(0));
  sizing.memory_config_mib = tc.mem_size_mib.value_or(0);
  sizing.cpu_shares_mhz = t.resources.cpu_shares;
  sizing.cpuset_cpus = t.resources.cpuset_cpus;
  sizing.memory_mb = t.resources.memory_mb;
  sizing.memory_max_mb = t.resources.memory_max_mb;
  NFC_ASSIGN_OR_RETURN(VmSize size, SizeVm(sizing, HostFacts::Detect()));
  std::string vmm_binary;
  vmm::Backend backend = PickBackend(config, tc.backend, &vmm_binary);
  std::string kernel = tc.kernel.value_or(config.kernel_path);
  std::string base_initrd = tc.initrd.value_or(config.initrd_path);
  NFC_RETURN_IF_ERROR_CTX(driver::CheckReadableFile(kernel), "guest kernel");
  NFC_RETURN_IF_ERROR_CTX(driver::CheckReadableFile(base_initrd), "guest initramfs");
  NFC_ASSIGN_OR_RETURN(std::string shim_binary, ShimBinary());
  std::map<std::string, std::string> task_env;
  for (const auto& [k, v] : tc.env) task_env[k] = v;  // later entries win
  NFC_ASSIGN_OR_RETURN(auto env, TaskEnvOverrides(task_env, t.env));

  // 2. The image (cache hit, or pull + convert), leased for this task.
  Emit(t, "Downloading image", {{"image", tc.image}});
  NFC_ASSIGN_OR_RETURN(image::Store * store, Images());
  image::PullOptions pull;
  if (tc.auth) pull.auth = image::RegistryAuth{tc.auth->username, tc.auth->password, ""};
  pull.force_pull = tc.force_pull;
  pull.insecure_registries = config.insecure_registries;
  pull.ca_file = config.ca_file;
  pull.lease_holder = t.id;
  bool building_reported = false;
  auto image = store->Resolve(tc.image, pull, [&](const image::Progress& p) {
    if (p.phase == image::Progress::Phase::kBuildingRootfs && !building_reported) {
      building_reported = true;
      Emit(t, "Building root filesystem", {{"image", tc.image}});
    }
  });
  if (!image.ok()) return std::move(image).error().Context("image " + tc.image);
  auto t_image = Clock::now();

  // 3. The state directory and everything the VM boots from. From here on, failures clean up.
  shim::TaskDir dir = shim::TaskDirFor(config.data_dir, t.id);
  DriverState state;
  state.task_id = t.id;
  state.alloc_id = t.alloc_id;
  state.task_name = t.name;
  state.task_dir = dir.root;
  state.control_socket = dir.ControlSocket();
  state.exit_record = dir.ExitRecord();
  state.backend = std::string(vmm::BackendName(backend));
  state.vcpus = size.vcpus;
  state.memory_mib = size.memory_mib;
  state.image_reference = image->reference;
  state.image_digest = image->manifest_digest;
  state.image_rootfs = image->rootfs_path;
  state.network_mode = "none";
  state.config = {{"image", tc.image}, {"vcpus_from", size.vcpus_from}, {"memory_from", size.memory_from}};
  bool shim_started = false;
  auto fail = [&](Error e) -> Error {
    if (shim_started) (void)shim::ControlClient(state.control_socket).Shutdown();
    (void)RemoveTaskResources(state);
    return e;
  };
  NFC_RETURN_IF_ERROR(MakeDir(config.data_dir + "/tasks", 0700));
  if (::mkdir(dir.root.c_str(), 0700) != 0) {
    Error e = Error::Errno("create task directory " + dir.root);
    if (errno == EEXIST)
      e = Error(ErrorCode::kAlreadyExists, "task directory " + dir.root + " already exists");
    (void)store->ReleaseLease(image->manifest_digest, t.id);
    return e;
  }
  {
    StartRecord record{t.id, image->manifest_digest, {}, "", PlannedTap(t)};
    if (!record.tap.empty()) record.netns_path = t.network->netns_path;
    if (auto self = IdentifyProcess(::getpid()); self.ok()) record.starter = *self;
    if (Status s =
            shim::WriteFileDurably(dir.root + "/" + std::string(kStartRecordFile), record.Encode(), 0600);
        !s.ok()) {
      return fail(std::move(s).error().Context("start record"));
    }
  }
  if (Status s = image::CreateScratchDisk(dir.Scratch(), 2ULL << 30, config.data_dir + "/scratch-templates");
      !s.ok()) {
    return fail(std::move(s).error().Context("scratch disk"));
  }
  auto net = AttachTaskNetwork(t);
  if (!net.ok()) return fail(std::move(net).error().Context("network"));
  state.network_mode = net->mode;
  state.netns_path = net->netns_path;
  state.tap_name = net->tap;
  state.address = net->address;

  guest::TaskSpec spec;
  spec.task_id = t.alloc_id.empty() ? t.id : t.alloc_id + "/" + t.name;
  spec.image.entrypoint = image->config.entrypoint;
  spec.image.cmd = image->config.cmd;
  spec.image.env = image->config.env;
  spec.image.working_dir = image->config.working_dir;
  spec.image.user = image->config.user;
  spec.process.entrypoint = tc.entrypoint;
  if (tc.command) {
    std::vector<std::string> args = {*tc.command};
    if (tc.args) args.insert(args.end(), tc.args->begin(), tc.args->end());
    spec.process.args = args;
  } else if (tc.args) {
    spec.process.args = tc.args;
  }
  spec.process.env = env;
  spec.process.working_dir = tc.work_dir.value_or("");
  // The task config's user wins over Nomad's task `user`, which wins over the image's USER.
  spec.process.user = tc.user.value_or(t.user);
  if (!image->config.stop_signal.empty()) {
    auto sig = ParseSignal(image->config.stop_signal);
    if (sig.ok()) spec.process.stop_signal = *sig;
  }
  spec.hostname = t.name.substr(0, 63);
  if (t.network && !t.network->hostname.empty()) spec.hostname = t.network->hostname;
  spec.dns = GuestDns(t, *net);
  spec.network = net->guest;
  spec.root.device = "/dev/vda";
  spec.scratch.device = "/dev/vdb";
  spec.control.serial_port = std::string(guest::kDefaultSerialPortName);
  if (Status s = guest::ValidateTaskSpec(spec); !s.ok()) return fail(std::move(s).error());
  std::string initrd = dir.root + "/initramfs.img";
  if (Status s = guest::WriteTaskInitramfs(base_initrd, spec, initrd); !s.ok())
    return fail(std::move(s).error());

  shim::ShimConfig sc;
  sc.task_id = t.id;
  sc.task_dir = dir.root;
  sc.backend = backend;
  sc.vm.id = "nfc-" + RandomHex(8);
  sc.vm.state_dir = dir.root;
  sc.vm.vmm_binary = vmm_binary;
  sc.vm.kernel_path = kernel;
  sc.vm.initrd_path = initrd;
  if (tc.boot_args) {
    auto words = driver::SplitShellWords(*tc.boot_args);
    if (!words.ok()) return fail(std::move(words).error().Context("boot_args"));
    sc.vm.kernel_args = *words;
  }
  sc.vm.vcpus = static_cast<uint32_t>(size.vcpus);
  sc.vm.memory_mib = static_cast<uint32_t>(size.memory_mib);
  sc.vm.drives = {{"rootfs", image->rootfs_path, true}, {"scratch", dir.Scratch(), false}};
  if (net->nic) sc.vm.nics.push_back(*net->nic);
  vmm::GuestChannelConfig channel;
  channel.socket_path = "agent.sock";  // relative to the task dir (the VMM's and the shim's cwd)
  channel.serial_port_name = std::string(guest::kDefaultSerialPortName);
  channel.port = guest::kDefaultVsockPort;
  sc.vm.guest_channel = channel;
  sc.guest_port = guest::kDefaultVsockPort;
  sc.vm.console.mode = vmm::ConsoleConfig::Mode::kFile;
  sc.vm.console.path = dir.ConsoleLog();
  sc.vm.vmm_log_path = dir.root + "/vmm.log";
  sc.stdout_path = t.stdout_path.empty() ? "/dev/null" : t.stdout_path;
  sc.stderr_path = t.stderr_path.empty() ? "/dev/null" : t.stderr_path;
  if (Status s = vmm::ValidateConfig(sc.vm); !s.ok()) return fail(std::move(s).error());
  if (Status s = shim::WriteFileDurably(dir.ShimConfig(), sc.ToJson(), 0600); !s.ok())
    return fail(std::move(s).error());
  auto t_prepared = Clock::now();

  // 4. The shim: detached, reports one line, then lives on its own.
  Emit(t, "Booting VM",
       {{"backend", state.backend},
        {"vcpus", std::to_string(size.vcpus)},
        {"memory_mib", std::to_string(size.memory_mib)}});
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return fail(Error::Errno("pipe"));
  UniqueFd read_end(out[0]), write_end(out[1]);
  SpawnOptions so;
  so.argv = {shim_binary, "start", dir.root};
  so.stdout_fd = write_end.get();
  so.netns_path = state.netns_path;  // the shim and its VMM live in the allocation's network namespace
  auto child = Spawn(so);
  write_end.Reset();
  if (!child.ok()) return fail(std::move(child).error().Context("start nomad-fc-shim"));
  std::string line;
  char buf[1024];
  for (;;) {
    ssize_t n = ::read(read_end.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  (void)WaitForExit(child->pid);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  if (line.rfind("ok ", 0) != 0) {
    std::string why = line.rfind("error: ", 0) == 0 ? line.substr(7) : line;
    return fail(Error::Internal("the VM did not start: " + (why.empty() ? "task shim failed" : why)));
  }
  shim_started = true;
  auto shim_id = IdentifyProcess(static_cast<pid_t>(std::atoi(line.c_str() + 3)));
  if (!shim_id.ok()) return fail(std::move(shim_id).error().Context("task shim"));
  state.shim = *shim_id;
  auto t_shim = Clock::now();

  // 5. Until the workload runs (or already ended): the shim knows.
  shim::ControlClient client(state.control_socket);
  shim::InspectInfo info;
  for (;;) {
    auto i = client.Inspect();
    if (!i.ok()) return fail(std::move(i).error().Context("task shim"));
    info = *i;
    if (info.state == shim::TaskState::kRunning || info.exited) break;
    if (!state.shim.IsAlive())
      return fail(Error::Internal("task shim exited during boot; see " + dir.ShimLog()));
    std::this_thread::sleep_for(50ms);
  }
  if (info.exited && !info.result.err.empty() && info.guest_boot_id.empty()) {
    return fail(Error::Internal("the VM did not boot: " + info.result.err));
  }
  auto t_running = Clock::now();
  state.started_at_unix_nanos = info.started_at_unix_nanos ? info.started_at_unix_nanos : UnixNanosNow();
  (void)shim::WriteFileDurably(dir.DriverState(), state.Encode(), 0600);

  auto task = std::make_shared<Task>(state);
  task->started_at =
      std::chrono::system_clock::time_point(std::chrono::nanoseconds(state.started_at_unix_nanos));
  StartTimings timings;
  timings.image_millis = std::chrono::duration_cast<std::chrono::milliseconds>(t_image - t0).count();
  timings.prepare_millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(t_prepared - t_image).count();
  timings.shim_millis = std::chrono::duration_cast<std::chrono::milliseconds>(t_shim - t_prepared).count();
  timings.boot_millis = std::chrono::duration_cast<std::chrono::milliseconds>(t_running - t_shim).count();
  timings.total_millis = MillisSince(t0);
  timings.guest_init_millis = info.guest_init_started_millis;
  timings.guest_workload_millis = info.guest_workload_exec_millis;
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
  if (!state.address.empty()) started.network = driver::NetworkOverride{{}, state.address, false};
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_[t.id] = task;
  }
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
  return Error::FailedPrecondition(
      "RecoverTask " + id + ": the task shim (pid " + std::to_string(state->shim.pid) +
      ") is gone and left no exit record; the VM is lost, the task must restart");
}

Result<shim::ExitResult> Manager::ResultFromDisk(const Task& task) const {
  auto record = shim::ReadExitRecord(task.state.exit_record);
  if (!record.ok()) return std::move(record).error();
  if (record->has_value()) return **record;
  return Error::Internal("the task shim (pid " + std::to_string(task.state.shim.pid) +
                         ") died without recording an exit; the VM is gone (see " + task.state.task_dir +
                         "/shim.log)");
}

}  // namespace nfc::task
