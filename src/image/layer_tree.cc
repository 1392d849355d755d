#include "image/layer_tree.h"

#include <sys/stat.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <iterator>

namespace nfc::image {
namespace {

constexpr int kMaxSymlinks = 255;        // continuity's RootPath gives up after as many
constexpr size_t kMaxNameLength = 255;   // ext4's limit for one directory entry name
constexpr size_t kMaxPathLength = 4095;  // PATH_MAX: containerd's syscalls fail on longer paths
constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";
constexpr int64_t kMaxId = 0xfffffffe;  // (uid_t)-1 means "unchanged" to chown(2)
// containerd's boundTime: times before the epoch or past time.Unix(0, 1<<63-1) are set to the epoch.
constexpr int64_t kMaxTimeSec = 9223372036;
constexpr uint32_t kMaxTimeNsec = 854775807;

std::string Quote(const std::string& s) {
  return "\"" + s + "\"";
}

std::string PathOf(const Dentry* d) {
  if (!d->parent) return "/";
  std::string p;
  for (; d->parent; d = d->parent) p = "/" + d->name + p;
  return p;
}

// Appends the components of path to comps like filepath.Clean would: "" and "." vanish, ".." removes the
// previous component; a ".." with nothing left to remove stays when keep_dotdot, else it stops at the root.
void AppendClean(std::string_view path, bool keep_dotdot, std::vector<std::string>* comps) {
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view c = path.substr(pos, slash - pos);
    pos = slash + 1;
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (!comps->empty() && comps->back() != "..") {
        comps->pop_back();
      } else if (keep_dotdot) {
        comps->emplace_back(c);
      }
      continue;
    }
    comps->emplace_back(c);
  }
}

// An entry name or hard link target, cleaned and taken from the root; refused if it still leads outside.
// A whiteout's own name may be longer than a name can be: ".wh." and the 255 bytes of the name it hides.
Result<std::vector<std::string>> RootedPath(const std::string& path, const std::string& what) {
  std::vector<std::string> comps;
  const bool rooted = !path.empty() && path[0] == '/';
  AppendClean(path, !rooted, &comps);
  if (!comps.empty() && comps[0] == "..") {
    return Error::InvalidArgument(what + " " + Quote(path.substr(0, 256)) + " leads outside the root");
  }
  size_t length = 0;
  for (size_t i = 0; i < comps.size(); ++i) {
    const bool whiteout = i + 1 == comps.size() && comps[i].starts_with(kWhiteoutPrefix);
    if (comps[i].size() > kMaxNameLength + (whiteout ? kWhiteoutPrefix.size() : 0)) {
      return Error::InvalidArgument(what + " " + Quote(path.substr(0, 256)) +
                                    " has a name longer than 255 bytes");
    }
    length += 1 + comps[i].size();
  }
  if (length > kMaxPathLength) {
    return Error::InvalidArgument(what + " " + Quote(path.substr(0, 256) + "...") +
                                  " is longer than 4095 bytes");
  }
  return comps;
}

std::shared_ptr<Inode> NewDirInode() {
  auto ino = std::make_shared<Inode>();
  ino->mode = S_IFDIR | 0755;
  return ino;
}

bool KeepXattr(const std::string& name, uint32_t mode) {
  if (name.starts_with("user.")) return name.size() > 5 && (S_ISREG(mode) || S_ISDIR(mode));
  if (name.starts_with("security.")) return name.size() > 9;
  if (name == "system.posix_acl_access") return !S_ISLNK(mode);
  if (name == "system.posix_acl_default") return S_ISDIR(mode);
  return false;  // trusted.* (containerd will not set them) and names of no namespace the kernel knows
}

// Owner, permissions, time and xattrs from the entry, as containerd's createTarFile sets them (also on the
// inode a hard link shares, whose old xattrs it adds to rather than replaces).
Status CopyMetadata(const TarEntry& e, Inode* ino, bool keep_old_xattrs) {
  if (e.uid < 0 || e.uid > kMaxId || e.gid < 0 || e.gid > kMaxId) {
    return Error::InvalidArgument("entry " + Quote(e.path) + ": owner " + std::to_string(e.uid) + ":" +
                                  std::to_string(e.gid) + " is out of range");
  }
  if (!S_ISLNK(ino->mode)) ino->mode = (ino->mode & S_IFMT) | (e.mode & 07777);
  ino->uid = static_cast<uint32_t>(e.uid);
  ino->gid = static_cast<uint32_t>(e.gid);
  const bool in_range =
      e.mtime >= 0 && (e.mtime < kMaxTimeSec || (e.mtime == kMaxTimeSec && e.mtime_nsec <= kMaxTimeNsec));
  ino->mtime = in_range ? e.mtime : 0;
  ino->mtime_nsec = in_range ? e.mtime_nsec : 0;
  if (!keep_old_xattrs) ino->xattrs.clear();
  for (const auto& x : e.xattrs) {
    if (!KeepXattr(x.first, ino->mode)) continue;
    auto it = std::find_if(ino->xattrs.begin(), ino->xattrs.end(),
                           [&](const auto& y) { return y.first == x.first; });
    if (it != ino->xattrs.end()) {
      it->second = x.second;
    } else {
      ino->xattrs.push_back(x);
    }
  }
  std::sort(ino->xattrs.begin(), ino->xattrs.end());
  return Ok();
}

// The inode of a new file, directory, symlink, device or fifo (not a hard link, which shares its target's).
Result<std::shared_ptr<Inode>> NewInode(int layer, uint64_t entry_index, const TarEntry& e) {
  auto ino = std::make_shared<Inode>();
  switch (e.type) {
    case TarEntry::Type::kFile:
      ino->mode = S_IFREG;
      ino->size = e.size;
      ino->layer = layer;
      ino->entry = entry_index;
      break;
    case TarEntry::Type::kDir:
      ino->mode = S_IFDIR;
      break;
    case TarEntry::Type::kSymlink:
      if (e.link_target.empty() || e.link_target.size() >= 4096) {
        return Error::InvalidArgument("entry " + Quote(e.path) + ": symlink target must be 1..4095 bytes");
      }
      ino->mode = S_IFLNK | 0777;
      ino->symlink_target = e.link_target;
      ino->size = e.link_target.size();
      break;
    case TarEntry::Type::kChar:
    case TarEntry::Type::kBlock:
    case TarEntry::Type::kFifo:
      if (e.dev_major < 0 || e.dev_major > UINT32_MAX || e.dev_minor < 0 || e.dev_minor > UINT32_MAX) {
        return Error::InvalidArgument("entry " + Quote(e.path) + ": device number out of range");
      }
      ino->mode = e.type == TarEntry::Type::kChar    ? S_IFCHR
                  : e.type == TarEntry::Type::kBlock ? S_IFBLK
                                                     : S_IFIFO;
      if (e.type != TarEntry::Type::kFifo) {
        // What mknod(2) keeps of unix.Mkdev(major, minor): a 32-bit dev_t, 12 bits of major, 20 of minor.
        ino->dev_major = static_cast<uint32_t>(e.dev_major) & 0xfff;
        ino->dev_minor = static_cast<uint32_t>(e.dev_minor) & 0xfffff;
      }
      break;
    case TarEntry::Type::kHardlink:
    case TarEntry::Type::kGlobalHeader:
    case TarEntry::Type::kOther:
      return Error::Internal("entry " + Quote(e.path) + ": no inode of its own");
  }
  NFC_RETURN_IF_ERROR(CopyMetadata(e, ino.get(), false));
  return ino;
}

size_t PathLength(const Dentry* d) {
  size_t n = 0;
  for (; d->parent; d = d->parent) n += 1 + d->name.size();
  return n;
}

void Touch(Dentry* d, int layer) {
  for (; d; d = d->parent) d->touched = std::max(d->touched, layer);
}

}  // namespace

bool Dentry::IsDir() const {
  return S_ISDIR(inode->mode);
}

LayerTree::LayerTree() : root_(std::make_unique<Dentry>()) {
  root_->inode = NewDirInode();
}

Dentry* LayerTree::AddDir(Dentry* parent, const std::string& name, int layer) {
  auto d = std::make_unique<Dentry>();
  d->name = name;
  d->parent = parent;
  d->inode = NewDirInode();
  d->touched = layer;
  return parent->children.emplace(name, std::move(d)).first->second.get();
}

Result<Dentry*> LayerTree::ResolveDir(std::vector<std::string> comps, int layer, bool create,
                                      const std::string& entry_path) {
  std::vector<Dentry*> stack{root_.get()};
  size_t length = 0;  // of the path resolved so far
  std::deque<std::string> pending(std::make_move_iterator(comps.begin()),
                                  std::make_move_iterator(comps.end()));
  int links = 0;
  while (!pending.empty()) {
    std::string c = std::move(pending.front());
    pending.pop_front();
    Dentry* cur = stack.back();
    auto it = cur->children.find(c);
    if (it == cur->children.end()) {
      if (!create) return nullptr;
      if (c.size() > kMaxNameLength) {
        return Error::InvalidArgument("entry " + Quote(entry_path) + ": a directory to create (" +
                                      c.substr(0, 32) + "...) has a name longer than 255 bytes");
      }
      if ((length += 1 + c.size()) > kMaxPathLength) break;
      stack.push_back(AddDir(cur, c, layer));
      continue;
    }
    Dentry* next = it->second.get();
    if (S_ISLNK(next->inode->mode)) {
      if (++links > kMaxSymlinks) {
        return Error::InvalidArgument("entry " + Quote(entry_path) + ": too many levels of symbolic links");
      }
      // RootPath: the target joined to the directory holding the link (or to the root), cleaned, and the
      // walk started again from the root with the rest of the path behind it.
      const std::string& target = next->inode->symlink_target;
      std::vector<std::string> joined;
      if (target[0] != '/') {
        for (size_t i = 1; i < stack.size(); ++i) joined.push_back(stack[i]->name);
      }
      AppendClean(target, false, &joined);
      pending.insert(pending.begin(), std::make_move_iterator(joined.begin()),
                     std::make_move_iterator(joined.end()));
      stack.resize(1);
      length = 0;
      continue;
    }
    if (!next->IsDir()) {
      return Error::InvalidArgument("entry " + Quote(entry_path) + ": " + PathOf(next) +
                                    " is not a directory");
    }
    if ((length += 1 + c.size()) > kMaxPathLength) break;
    stack.push_back(next);
  }
  if (length > kMaxPathLength) {
    return Error::InvalidArgument("entry " + Quote(entry_path) +
                                  ": its directory resolves to a path longer than 4095 bytes");
  }
  return stack.back();
}

void LayerTree::HideLower(Dentry* dir, int layer) {
  for (auto it = dir->children.begin(); it != dir->children.end();) {
    Dentry* child = it->second.get();
    if (child->touched < layer) {
      it = dir->children.erase(it);
      continue;
    }
    if (child->IsDir()) HideLower(child, layer);
    ++it;
  }
}

Status LayerTree::ApplyWhiteout(Dentry* dir, const std::string& name, int layer,
                                const std::string& entry_path) {
  if (name == kOpaqueMarker) {
    HideLower(dir, layer);
    return Ok();
  }
  const std::string hidden = name.substr(kWhiteoutPrefix.size());
  if (hidden.empty() || hidden == "." || hidden == "..") {
    return Error::InvalidArgument("entry " + Quote(entry_path) + ": invalid whiteout name");
  }
  auto it = dir->children.find(hidden);
  if (it == dir->children.end()) return Ok();
  Dentry* d = it->second.get();
  if (d->touched < layer) {
    dir->children.erase(it);
  } else if (d->IsDir()) {
    HideLower(d, layer);
  }
  return Ok();
}

Status LayerTree::Apply(int layer, uint64_t entry_index, const TarEntry& e) {
  NFC_ASSIGN_OR_RETURN(auto comps, RootedPath(e.path, "entry"));
  if (comps.empty()) return Ok();  // the root itself: containerd ignores such an entry
  const std::string name = std::move(comps.back());
  comps.pop_back();
  NFC_ASSIGN_OR_RETURN(Dentry * parent, ResolveDir(std::move(comps), layer, true, e.path));
  if (PathLength(parent) + 1 + name.size() > kMaxPathLength && !name.starts_with(kWhiteoutPrefix)) {
    return Error::InvalidArgument("entry " + Quote(e.path.substr(0, 256) + "...") +
                                  ": its path resolves to more than 4095 bytes");
  }
  Touch(parent, layer);
  if (name.starts_with(kWhiteoutPrefix)) return ApplyWhiteout(parent, name, layer, e.path);

  auto existing = parent->children.find(name);
  if (existing != parent->children.end()) {
    Dentry* old = existing->second.get();
    if (e.type == TarEntry::Type::kDir && old->IsDir()) {
      old->touched = layer;
      return CopyMetadata(e, old->inode.get(), false);
    }
    parent->children.erase(existing);  // replaced (a hard link below may no longer find what was here)
  }
  if (e.type == TarEntry::Type::kGlobalHeader)
    return Ok();  // containerd removes what was there, makes nothing
  if (e.type == TarEntry::Type::kOther) {
    return Error::InvalidArgument("entry " + Quote(e.path) + ": unsupported entry type '" +
                                  std::string(1, e.typeflag) + "'");
  }
  std::shared_ptr<Inode> inode;
  if (e.type == TarEntry::Type::kHardlink) {
    NFC_ASSIGN_OR_RETURN(inode, HardLinkTarget(layer, e));
    NFC_RETURN_IF_ERROR(CopyMetadata(e, inode.get(), true));
  } else {
    NFC_ASSIGN_OR_RETURN(inode, NewInode(layer, entry_index, e));
  }
  auto d = std::make_unique<Dentry>();
  d->name = name;
  d->parent = parent;
  d->touched = layer;
  d->inode = std::move(inode);
  parent->children.emplace(name, std::move(d));
  return Ok();
}

Result<std::shared_ptr<Inode>> LayerTree::HardLinkTarget(int layer, const TarEntry& e) {
  const std::string what = "entry " + Quote(e.path) + ": hard link target";
  NFC_ASSIGN_OR_RETURN(auto comps, RootedPath(e.link_target, what));
  if (comps.empty()) return Error::InvalidArgument(what + " is the root directory");
  const std::string name = std::move(comps.back());
  comps.pop_back();
  NFC_ASSIGN_OR_RETURN(Dentry * dir, ResolveDir(std::move(comps), layer, false, e.path));
  auto t = dir ? dir->children.find(name) : root_->children.end();
  if (!dir || t == dir->children.end()) {
    return Error::InvalidArgument(what + " " + Quote(e.link_target) + " does not exist");
  }
  if (t->second->IsDir())
    return Error::InvalidArgument(what + " " + Quote(e.link_target) + " is a directory");
  return t->second->inode;
}

Dentry* LayerTree::Find(const std::string& path) {
  Dentry* cur = root_.get();
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string::npos) slash = path.size();
    std::string c = path.substr(pos, slash - pos);
    pos = slash + 1;
    if (c.empty() || c == ".") continue;
    auto it = cur->children.find(c);
    if (it == cur->children.end()) return nullptr;
    cur = it->second.get();
  }
  return cur;
}

TreeStats LayerTree::Finalize() {
  TreeStats stats;
  std::function<void(Dentry*)> reset = [&](Dentry* d) {
    d->inode->nlink = 0;
    for (auto& [_, c] : d->children) reset(c.get());
  };
  reset(root_.get());
  std::function<void(Dentry*)> count = [&](Dentry* d) {
    Inode* ino = d->inode.get();
    if (d->IsDir()) {
      ino->nlink = 2;
      ++stats.dirs;
      ++stats.inodes;
      for (auto& [_, c] : d->children) {
        if (c->IsDir()) ++ino->nlink;
        count(c.get());
      }
      return;
    }
    if (ino->nlink++ == 0) {
      ++stats.inodes;
      if (S_ISREG(ino->mode)) {
        ++stats.regular_files;
        stats.file_bytes += ino->size;
      }
    } else {
      ++stats.hardlinks;
    }
  };
  count(root_.get());
  return stats;
}

}  // namespace nfc::image
