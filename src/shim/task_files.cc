#include "shim/task_files.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>

#include "base/log.h"

namespace nfc::shim {

namespace pb = ::nfc::guest::v1;
using namespace std::chrono_literals;

namespace {

// A burst of changes (Nomad rendering several templates, an artifact being unpacked) goes out as one scan:
// after this much quiet, or kMaxSettle after the first event at the latest.
constexpr int kSettleMs = 20;
constexpr auto kMaxSettle = 200ms;

}  // namespace

Result<std::unique_ptr<TaskFiles>> TaskFiles::Open(const std::vector<HostFileRoot>& roots,
                                                   uint64_t max_bytes) {
  if (roots.empty()) return std::unique_ptr<TaskFiles>();
  std::unique_ptr<TaskFiles> t(new TaskFiles());
  for (const auto& r : roots) {
    files::Mirror::Options o;
    o.name = r.name;
    o.root = r.path;
    o.limits.max_bytes = max_bytes;
    o.local_wins_conflicts = r.two_way;
    o.exclude = files::Exclusions(r.exclude.begin(), r.exclude.end());
    o.writer.strip_setid = true;
    auto mirror = files::Mirror::Open(o);
    if (!mirror.ok()) return std::move(mirror).error().Context("task directory " + r.name);
    auto watcher = files::TreeWatcher::Open(r.path, o.exclude);
    if (!watcher.ok()) return std::move(watcher).error().Context("task directory " + r.name);
    t->roots_.push_back({r, std::move(mirror).value(), std::move(watcher).value()});
  }
  t->wake_.Reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!t->wake_) return Error::Errno("eventfd");
  t->watcher_ = std::thread([p = t.get()] { p->WatchLoop(); });
  return t;
}

TaskFiles::~TaskFiles() {
  stopping_ = true;
  uint64_t one = 1;
  if (wake_ && write(wake_.get(), &one, sizeof one) < 0) log::Warn("task files: wake failed");
  if (watcher_.joinable()) watcher_.join();
  Detach();
}

Status TaskFiles::SendAll(const std::shared_ptr<guest::AgentClient>& agent) {
  for (auto& r : roots_) {
    auto sent = r.mirror->SendChanges([&](pb::FileBatch& batch) { return agent->SendFiles(batch); });
    if (!sent.ok()) return std::move(sent).error().Context(r.config.name);
  }
  return Ok();
}

Status TaskFiles::Attach(const std::shared_ptr<guest::AgentClient>& agent) {
  Detach();
  {
    std::lock_guard lock(mu_);
    if (agent->boot_id() != boot_id_) {
      for (auto& r : roots_) r.mirror->ForgetPeer();
      boot_id_ = agent->boot_id();
    }
    agent_ = agent;
  }
  Status sent = SendAll(agent);
  if (!sent.ok() && sent.error().code() == ErrorCode::kUnavailable)
    return sent;  // the next connection retries
  if (!sent.ok()) log::Error("task files not copied into the VM", {{"error", sent.error().ToString()}});
  NFC_RETURN_IF_ERROR(agent->FilesReady(sent.ok() ? std::string() : sent.error().ToString()));
  receiver_ = std::thread([this, agent] { ReceiveLoop(agent); });
  return sent;
}

void TaskFiles::Detach() {
  {
    std::lock_guard lock(mu_);
    agent_.reset();
  }
  if (receiver_.joinable()) receiver_.join();  // ends with its connection, which the caller closed
}

Status TaskFiles::Barrier() {
  std::shared_ptr<guest::AgentClient> agent;
  {
    std::lock_guard lock(mu_);
    agent = agent_;
  }
  if (!agent) return Error::Unavailable("task files: the guest is not connected");
  return SendAll(agent);
}

void TaskFiles::ReceiveLoop(const std::shared_ptr<guest::AgentClient>& agent) {
  for (;;) {
    auto batch = agent->NextFileBatch(500ms);
    if (!batch.ok()) return;  // connection gone
    if (!batch->has_value()) {
      std::lock_guard lock(mu_);
      if (agent_ != agent) return;
      continue;
    }
    const pb::FileBatch& b = **batch;
    bool applied = false;
    for (auto& r : roots_) {
      if (r.config.name != b.root() || !r.config.two_way) continue;
      Status s = r.mirror->Apply(b);
      if (!s.ok()) log::Warn("task files: guest change not applied", {{"error", s.error().ToString()}});
      applied = true;
    }
    if (!applied) log::Warn("task files: guest sent a root it may not write", {{"root", b.root()}});
  }
}

void TaskFiles::WatchLoop() {
  std::vector<pollfd> fds;
  fds.push_back({wake_.get(), POLLIN, 0});
  for (auto& r : roots_) fds.push_back({r.watcher->fd(), POLLIN, 0});
  while (!stopping_) {
    if (poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) {
      log::Error("task files: poll failed; live updates stop", {{"error", Error::Errno("poll").ToString()}});
      return;
    }
    if (stopping_) return;
    bool changed = false;
    auto first = std::chrono::steady_clock::now();
    for (;;) {  // settle: drain until quiet
      for (auto& r : roots_) {
        auto c = r.watcher->Drain();
        if (!c.ok())
          log::Warn("task files: watch failed", {{"root", r.config.name}, {"error", c.error().ToString()}});
        changed = changed || (c.ok() && *c);
      }
      if (std::chrono::steady_clock::now() - first >= kMaxSettle) break;
      if (poll(fds.data() + 1, fds.size() - 1, kSettleMs) <= 0) break;
    }
    if (!changed) continue;
    Status s = Barrier();
    if (!s.ok() && s.error().code() != ErrorCode::kUnavailable) {
      log::Error("task files: change not copied into the VM", {{"error", s.error().ToString()}});
    }
  }
}

}  // namespace nfc::shim
