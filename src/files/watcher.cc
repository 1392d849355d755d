#include <dirent.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>

#include "files/mirror.h"

namespace nfc::files {

namespace {

constexpr uint32_t kEvents = IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM |
                             IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR |
                             IN_DONT_FOLLOW;
constexpr int kMaxDepth = 128;

struct DirCloser {
  void operator()(DIR* d) const { closedir(d); }
};

}  // namespace

Result<std::unique_ptr<TreeWatcher>> TreeWatcher::Open(const std::string& root, Exclusions exclude) {
  UniqueFd fd(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!fd) return Error::Errno("inotify_init1");
  std::unique_ptr<TreeWatcher> w(new TreeWatcher(std::move(fd)));
  w->root_ = root;
  w->exclude_ = std::move(exclude);
  NFC_RETURN_IF_ERROR(w->WatchTree(root, 0));
  return w;
}

// Watches dir and every directory below it. A directory that vanishes meanwhile is skipped: its removal is an
// event of its parent.
Status TreeWatcher::WatchTree(const std::string& dir, int depth) {
  if (depth > kMaxDepth) return Ok();
  int wd = inotify_add_watch(inotify_.get(), dir.c_str(), kEvents);
  if (wd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return Ok();
    return Error::Errno("inotify_add_watch " + dir);
  }
  dirs_[wd] = dir;
  std::unique_ptr<DIR, DirCloser> d(opendir(dir.c_str()));
  if (!d) return Ok();
  while (dirent* e = readdir(d.get())) {
    std::string_view name = e->d_name;
    if (name == "." || name == ".." || e->d_type != DT_DIR) continue;
    if (depth == 0 && exclude_.count(std::string(name))) continue;
    NFC_RETURN_IF_ERROR(WatchTree(dir + "/" + std::string(name), depth + 1));
  }
  return Ok();
}

Result<bool> TreeWatcher::Drain() {
  alignas(inotify_event) char buffer[16 << 10];
  bool changed = false;
  while (true) {
    ssize_t n = read(inotify_.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return changed;
    if (n < 0) return Error::Errno("read inotify");
    for (ssize_t at = 0; at < n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buffer + at);
      at += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
      if (ev->mask & IN_Q_OVERFLOW) {
        changed = true;  // events were lost: the caller's scan finds what changed; watch what is there now
        for (const auto& [wd, dir] : dirs_) inotify_rm_watch(inotify_.get(), wd);
        dirs_.clear();
        NFC_RETURN_IF_ERROR(WatchTree(root_, 0));
        continue;
      }
      if (ev->mask & IN_IGNORED) {
        dirs_.erase(ev->wd);
        continue;
      }
      std::string_view name = ev->len ? std::string_view(ev->name) : std::string_view();
      if (name.starts_with(kTempPrefix)) continue;  // our own writer's temp files
      auto it = dirs_.find(ev->wd);
      if (it != dirs_.end() && it->second == root_ && exclude_.count(std::string(name))) continue;
      changed = true;
      if (it != dirs_.end() && (ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO))) {
        NFC_RETURN_IF_ERROR(WatchTree(it->second + "/" + std::string(name), 1));
      }
    }
  }
}

}  // namespace nfc::files
