#include "vmm/backend_vmm.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

#include "base/fs.h"
#include "base/log.h"
#include "base/proc.h"
#include "base/process.h"

namespace nfc::vmm {
namespace {

using namespace std::chrono_literals;

constexpr size_t kStderrTail = 2048;  // how much of the VMM's stderr goes into a message

// The locks of shared volumes (Drive::lock), in drive order. The VMM inherits them, so a lock lasts exactly
// as long as a process that can write to the disk, whatever happens to the shim or the plugin.
Result<std::vector<UniqueFd>> LockDrives(const std::vector<Drive>& drives) {
  std::vector<UniqueFd> locks;
  for (const auto& d : drives) {
    if (d.lock == DriveLock::kNone) continue;
    auto mode = d.lock == DriveLock::kExclusive ? fs::LockMode::kExclusive : fs::LockMode::kShared;
    auto fd = fs::TryLockFile(d.path, mode);
    if (!fd.ok()) return std::move(fd).error().Context("drive " + d.id);
    locks.push_back(std::move(*fd));
  }
  return locks;
}

Status RemoveStale(const std::string& path) {
  if (path.empty()) return Ok();
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Error::Errno("remove stale socket " + path);
  return Ok();
}

}  // namespace

std::string FileTail(const std::string& path, size_t max) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return {};
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (s.size() > max) s = "..." + s.substr(s.size() - max);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

BackendVmm::BackendVmm(std::string_view name, VmConfig&& config, std::string control_socket,
                       std::string stderr_path)
    : config_(std::move(config)),
      name_(name),
      control_socket_(std::move(control_socket)),
      stderr_path_(std::move(stderr_path)),
      attached_(false) {}

BackendVmm::BackendVmm(std::string_view name, const VmRecord& record)
    : name_(name), control_socket_(record.api_socket), attached_(true), record_(record) {
  config_.id = record.id;
}

BackendVmm::~BackendVmm() {
  bool started;
  {
    std::lock_guard lock(start_mu_);
    started = started_;
  }
  if (started && !attached_ && !process_.Exited()) {
    // The owner dropped us without waiting: do not leave an unsupervised VMM behind.
    (void)process_.Signal(SIGKILL);
    (void)process_.WaitExit(5s);
  }
  console_.Join();
}

Status BackendVmm::Start() {
  if (attached_) return Error::FailedPrecondition("Start on an attached " + name_ + " VMM");
  {
    std::lock_guard lock(start_mu_);
    if (started_) return Error::FailedPrecondition(Subject() + " already started");
    started_ = true;
  }
  Status s = Launch();
  if (!s.ok()) {
    (void)process_.Signal(SIGKILL);
    if (process_.pid() > 0) (void)process_.WaitExit(5s);
    RemoveSockets();
    RemoveJail();
    return std::move(s).error().Context("start " + Subject());
  }
  return Ok();
}

Result<UniqueFd> BackendVmm::ConnectGuest(uint32_t port, std::chrono::milliseconds timeout) {
  VmRecord r = Record();
  if (!r.guest) return Error::FailedPrecondition(Subject() + " has no guest channel");
  return ConnectGuestEndpoint(*r.guest, port, timeout);
}

VmRecord BackendVmm::Record() const {
  std::lock_guard lock(record_mu_);
  return record_;
}

Status BackendVmm::SpawnVmm(SpawnSpec spec) {
  for (const auto& path : spec.stale_sockets) NFC_RETURN_IF_ERROR(RemoveStale(path));
  UniqueFd err_fd(::open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
  if (!err_fd) return Error::Errno("open " + stderr_path_);
  UniqueFd console_write;
  if (console_on()) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return Error::Errno("pipe2 for the console");
    UniqueFd read_end(p[0]);
    console_write.Reset(p[1]);
    NFC_RETURN_IF_ERROR(console_.Start(std::move(read_end), config_.console.path, config_.console.max_bytes));
  }
  NFC_ASSIGN_OR_RETURN(std::vector<UniqueFd> locks, LockDrives(config_.drives));
  SpawnOptions o;
  o.argv = std::move(spec.argv);
  if (spec.jail_dir.empty()) {
    for (size_t i = 0; i < locks.size(); i++)
      o.extra_fds.emplace_back(locks[i].get(), static_cast<int>(3 + i));
  } else {
    drive_locks_ = std::move(locks);  // the jailer closes inherited fds; the supervisor lives as long
  }
  o.stdout_fd = console_write ? console_write.get() : -1;
  o.stderr_fd = err_fd.get();
  // Own session: terminal signals to the supervisor's group must not reach the VMM (Firecracker has no SIGINT
  // handler; QEMU would quit).
  o.new_session = true;
  o.cwd = config_.state_dir;
  if (config_.kill_with_owner) o.parent_death_signal = SIGKILL;
  if (config_.sandbox) o.join_cgroups = config_.sandbox->cgroup_procs;
  NFC_RETURN_IF_ERROR_CTX(process_.Spawn(o), "spawn " + o.argv[0]);
  console_write.Reset();  // only the VMM holds the write end now: the pump sees EOF when the VMM is gone

  std::lock_guard lock(record_mu_);
  record_.backend = spec.backend;
  record_.id = config_.id;
  record_.pid = process_.pid();
  record_.start_time = process_.start_time();
  record_.api_socket = control_socket_;
  record_.kvm = spec.kvm;
  if (console_on()) record_.console_path = config_.console.path;
  record_.guest = std::move(spec.guest);
  record_.jail_dir = std::move(spec.jail_dir);
  return Ok();
}

Status BackendVmm::FollowVmm(pid_t pid) {
  NFC_RETURN_IF_ERROR(process_.FollowReparented(pid));
  std::lock_guard lock(record_mu_);
  record_.pid = process_.pid();
  record_.start_time = process_.start_time();
  return Ok();
}

Status BackendVmm::AdoptProcess() {
  VmRecord r = Record();
  return process_.Adopt(r.pid, r.start_time);
}

void BackendVmm::SetRecordedVersion(std::string version) {
  std::lock_guard lock(record_mu_);
  record_.vmm_version = std::move(version);
}

std::optional<VmExit> BackendVmm::CommonExit(int status) {
  VmExit e;
  e.wait_status = status;
  if (status == -1) {
    e.kind = VmExit::Kind::kUnknown;
    e.detail = name_ + " process " + std::to_string(process_.pid()) + " is gone; exit status unknown";
    return e;
  }
  if (process_.killed_by_us()) {
    e.kind = VmExit::Kind::kKilled;
    e.detail = DescribeWaitStatus(status);
    return e;
  }
  return std::nullopt;
}

std::string BackendVmm::StderrSuffix() const {
  if (stderr_path_.empty()) return {};
  std::string tail = FileTail(stderr_path_, kStderrTail);
  return tail.empty() ? std::string() : "; stderr: " + tail;
}

void BackendVmm::AfterExit() {
  console_.Join();
  RemoveSockets();
  RemoveJail();
}

void BackendVmm::RemoveJail() {
  drive_locks_.clear();
  std::string jail = Record().jail_dir;
  if (jail.empty()) return;
  // A start that failed between the jailer's exit and following its Firecracker leaves that one running.
  if (Status s = KillJailedVmm(jail); !s.ok()) {
    log::Warn("could not kill the VMM left in its jail",
              {{"vm", config_.id}, {"error", s.error().message()}});
  }
  if (Status s = fs::RemoveTree(jail); !s.ok()) {
    log::Warn("could not remove the VMM's jail", {{"vm", config_.id}, {"error", s.error().message()}});
  }
}

void BackendVmm::RemoveSockets() {
  (void)RemoveStale(control_socket_);
  if (config_.guest_channel) (void)RemoveStale(config_.guest_channel->socket_path);
}

bool BackendVmm::Silent(bool answered) {
  auto now = std::chrono::steady_clock::now();
  if (answered || last_answer_ == std::chrono::steady_clock::time_point{}) {  // adopted, or the first poll
    last_answer_ = now;
    return false;
  }
  return now - last_answer_ >= config_.unresponsive_after;
}

std::string BackendVmm::KillUnresponsive(std::string_view control, const Error& last_error) {
  std::string state;
  if (auto st = ReadProcStat(process_.pid()); st.ok()) {
    state = st->state == 'T' || st->state == 't' ? "; its process is stopped (SIGSTOP or a debugger)"
                                                 : std::string("; its process state is ") + st->state;
  }
  std::string why =
      std::string(control) + " did not answer for " +
      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(config_.unresponsive_after).count()) +
      " s (" + last_error.message() + ")" + state + "; " + name_ + " killed";
  log::Warn("VMM unresponsive; killing it", {{"vm", config_.id}, {"detail", why}});
  Status killed = process_.Signal(SIGKILL);
  if (!killed.ok()) why += " (the kill failed: " + killed.error().message() + ")";
  return why;
}

}  // namespace nfc::vmm
