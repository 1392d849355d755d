// Nomad's task directories in the guest (docs/task-files.md): the roots are made (secrets on a tmpfs), the
// host's copy arrives as FileBatch messages, and the workload starts once the host says FilesReady. Roots
// mirrored both ways are watched with inotify; what the workload changes there goes back to the host a short
// while after the last change (kScanDelay), as unsolicited FileBatch messages of the current session.
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "base/log.h"
#include "init/common/mounts.h"
#include "init/common/system.h"
#include "init/guest/guest_init.h"

namespace nfc::init::guest {

namespace {

// Coalesces a burst of writes (a workload appending to a file) into one scan.
constexpr uint64_t kScanDelayNs = 200 * 1000000ULL;

}  // namespace

Status GuestInit::SetUpTaskFiles() {
  for (const auto& root : spec_.files.roots) {
    NFC_RETURN_IF_ERROR(MakeDirs(root.path, 0755));
    if (!root.tmpfs_size.empty()) {
      NFC_RETURN_IF_ERROR(
          Mount("nomad-" + root.name, root.path, "tmpfs", MS_NOSUID | MS_NODEV, "size=" + root.tmpfs_size));
    }
    if (chmod(root.path.c_str(), root.mode) != 0) return Error::Errno("chmod " + root.path);
    files::Mirror::Options o;
    o.name = root.name;
    o.root = root.path;
    o.limits.max_bytes = spec_.files.max_bytes;
    o.exclude = files::Exclusions(root.exclude.begin(), root.exclude.end());
    NFC_ASSIGN_OR_RETURN(auto mirror, files::Mirror::Open(o));
    if (root.two_way) {
      NFC_ASSIGN_OR_RETURN(auto watcher, files::TreeWatcher::Open(root.path, o.exclude));
      size_t index = file_watchers_.size();
      file_watchers_.push_back({root.name, std::move(watcher), 0});
      Watch(file_watchers_.back().watcher->fd(), WatchToken(WatchKind::kFilesWatch, index), EPOLLIN,
            file_watchers_.back().interest);
    }
    mirrors_[root.name] = std::move(mirror);
  }
  if (!spec_.files.roots.empty()) {
    awaiting_files_ = true;
    files_deadline_ns_ = MonotonicNs() + uint64_t{spec_.files.initial_timeout_ms} * 1000000;
  }
  return Ok();
}

void GuestInit::OnFileBatch(Connection& c, uint64_t request_id, const pb::FileBatch& batch) {
  auto it = mirrors_.find(batch.root());
  if (it == mirrors_.end()) {
    return SendReply(c, request_id,
                     Error::NotFound("task files: no root \"" + batch.root() + "\" in this task"));
  }
  Status applied = it->second->Apply(batch);
  if (!applied.ok()) log::Warn("task files not applied", {{"error", applied.error().ToString()}});
  SendReply(c, request_id, applied);
}

void GuestInit::OnFilesReady(Connection& c, uint64_t request_id, const pb::FilesReady& ready) {
  SendReply(c, request_id, Ok());
  if (!awaiting_files_) return;
  awaiting_files_ = false;
  files_deadline_ns_ = 0;
  if (!ready.error().empty()) return FailBoot(Error::FailedPrecondition("task files: " + ready.error()), 125);
  log::Debug("task files in place");
  LaunchWorkload();
}

void GuestInit::OnFilesWatch(size_t index) {
  if (index >= file_watchers_.size()) return;
  auto changed = file_watchers_[index].watcher->Drain();
  if (!changed.ok()) {
    log::Warn("task files: watch failed",
              {{"root", file_watchers_[index].root}, {"error", changed.error().ToString()}});
    return;
  }
  if (*changed && !files_scan_at_ns_) files_scan_at_ns_ = MonotonicNs() + kScanDelayNs;
}

// Sends what the workload changed in the two-way roots to the current host session. Without a host the
// changes wait (they are found again by the scan after the next hello).
void GuestInit::SendGuestFileChanges() {
  files_scan_at_ns_ = 0;
  Connection* host = nullptr;
  for (auto& [id, c] : conns_) {
    if (c->greeted && c->host_present) host = c.get();
  }
  for (const auto& w : file_watchers_) {
    auto send = [&](pb::FileBatch& batch) -> Status {
      if (!host) return Error::Unavailable("no host connected");
      pb::GuestMessage m;
      *m.mutable_files() = std::move(batch);
      Send(*host, m);
      FlushConnection(*host);
      return Ok();
    };
    auto sent = mirrors_.at(w.root)->SendChanges(send);
    if (!sent.ok() && sent.error().code() != ErrorCode::kUnavailable) {
      log::Warn("task files: changes not sent to the host",
                {{"root", w.root}, {"error", sent.error().ToString()}});
    }
  }
}

// A new host session may be a new host process that knows nothing: the two-way roots are sent in full.
void GuestInit::ResendTwoWayRoots() {
  for (const auto& w : file_watchers_) mirrors_.at(w.root)->ForgetPeer();
  if (!file_watchers_.empty()) files_scan_at_ns_ = MonotonicNs();
}

}  // namespace nfc::init::guest
