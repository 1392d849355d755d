#include "image/layer_tree.h"

#include <sys/stat.h>

#include <functional>

namespace nfc::image {
namespace {

constexpr int kMaxSymlinkDepth = 40;
constexpr size_t kMaxNameLength = 255;  // ext4's limit for one directory entry name
constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

std::string PathOf(const Dentry* d) {
  if (!d->parent) return "/";
  std::string p;
  for (; d->parent; d = d->parent) p = "/" + d->name + p;
  return p;
}

std::shared_ptr<Inode> NewDirInode() {
  auto ino = std::make_shared<Inode>();
  ino->mode = S_IFDIR | 0755;
  return ino;
}

void CopyMetadata(const TarEntry& e, Inode* ino) {
  ino->mode = (ino->mode & S_IFMT) | (e.mode & 07777);
  ino->uid = e.uid;
  ino->gid = e.gid;
  ino->mtime = e.mtime;
  ino->mtime_nsec = e.mtime_nsec;
  ino->xattrs = e.xattrs;
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
        return Error::InvalidArgument("entry \"" + e.path + "\": symlink target must be 1..4095 bytes");
      }
      ino->mode = S_IFLNK;
      ino->symlink_target = e.link_target;
      ino->size = e.link_target.size();
      break;
    case TarEntry::Type::kChar:
      ino->mode = S_IFCHR;
      break;
    case TarEntry::Type::kBlock:
      ino->mode = S_IFBLK;
      break;
    case TarEntry::Type::kFifo:
      ino->mode = S_IFIFO;
      break;
    default:
      break;
  }
  CopyMetadata(e, ino.get());
  if (S_ISLNK(ino->mode)) ino->mode = S_IFLNK | 0777;
  ino->dev_major = e.dev_major;
  ino->dev_minor = e.dev_minor;
  return ino;
}

}  // namespace

bool Dentry::IsDir() const {
  return S_ISDIR(inode->mode);
}

LayerTree::LayerTree() : root_(std::make_unique<Dentry>()) {
  root_->inode = NewDirInode();
  root_->layer = -1;
}

Result<std::vector<std::string>> LayerTree::SplitPath(const std::string& path,
                                                      const std::string& what) const {
  if (!path.empty() && path[0] == '/') {
    return Error::InvalidArgument(what + " \"" + path + "\" is absolute; layer paths must be relative");
  }
  std::vector<std::string> comps;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string::npos) slash = path.size();
    std::string c = path.substr(pos, slash - pos);
    pos = slash + 1;
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      return Error::InvalidArgument(what + " \"" + path + "\" contains \"..\" (would escape the root)");
    }
    if (c.size() > kMaxNameLength) {
      return Error::InvalidArgument(what + " \"" + path + "\" has a name longer than 255 bytes");
    }
    comps.push_back(std::move(c));
  }
  return comps;
}

Result<Dentry*> LayerTree::ResolveSymlinkDir(Dentry* link, int layer, const std::string& entry_path,
                                             int depth) {
  if (depth > kMaxSymlinkDepth) {
    return Error::InvalidArgument("entry \"" + entry_path + "\": too many levels of symbolic links");
  }
  const std::string& target = link->inode->symlink_target;
  Dentry* cur = (!target.empty() && target[0] == '/') ? root_.get() : link->parent;
  size_t pos = 0;
  while (pos <= target.size()) {
    size_t slash = target.find('/', pos);
    if (slash == std::string::npos) slash = target.size();
    std::string c = target.substr(pos, slash - pos);
    pos = slash + 1;
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (!cur->parent) {
        return Error::InvalidArgument("entry \"" + entry_path + "\" goes through symlink " + PathOf(link) +
                                      " -> " + target + ", which leads outside the root");
      }
      cur = cur->parent;
      continue;
    }
    auto it = cur->children.find(c);
    if (it == cur->children.end()) {
      return Error::InvalidArgument("entry \"" + entry_path + "\" goes through symlink " + PathOf(link) +
                                    " -> " + target + ", whose target does not exist");
    }
    Dentry* next = it->second.get();
    if (S_ISLNK(next->inode->mode)) {
      NFC_ASSIGN_OR_RETURN(next, ResolveSymlinkDir(next, layer, entry_path, depth + 1));
    } else if (!next->IsDir()) {
      return Error::InvalidArgument("entry \"" + entry_path + "\": " + PathOf(next) + " is not a directory");
    }
    cur = next;
  }
  return cur;
}

Result<Dentry*> LayerTree::WalkDir(const std::vector<std::string>& comps, size_t n, int layer,
                                   bool create_missing, const std::string& entry_path, int depth) {
  Dentry* cur = root_.get();
  for (size_t i = 0; i < n; ++i) {
    auto it = cur->children.find(comps[i]);
    if (it == cur->children.end()) {
      if (!create_missing) {
        return Error::InvalidArgument("entry \"" + entry_path + "\": " + PathOf(cur) +
                                      (cur->parent ? "/" : "") + comps[i] + " does not exist");
      }
      auto d = std::make_unique<Dentry>();
      d->name = comps[i];
      d->parent = cur;
      d->inode = NewDirInode();
      d->layer = layer;
      it = cur->children.emplace(comps[i], std::move(d)).first;
    }
    Dentry* next = it->second.get();
    if (S_ISLNK(next->inode->mode)) {
      NFC_ASSIGN_OR_RETURN(next, ResolveSymlinkDir(next, layer, entry_path, depth + 1));
    } else if (!next->IsDir()) {
      return Error::InvalidArgument("entry \"" + entry_path + "\": parent " + PathOf(next) +
                                    " is not a directory");
    }
    cur = next;
  }
  return cur;
}

void LayerTree::HideLower(Dentry* dir, int layer) {
  for (auto it = dir->children.begin(); it != dir->children.end();) {
    Dentry* child = it->second.get();
    if (child->layer < layer) {
      it = dir->children.erase(it);
      continue;
    }
    if (child->IsDir()) HideLower(child, layer);
    ++it;
  }
}

Status LayerTree::Apply(int layer, uint64_t entry_index, const TarEntry& e) {
  NFC_ASSIGN_OR_RETURN(auto comps, SplitPath(e.path, "entry path"));
  if (e.type == TarEntry::Type::kOther) {
    return Error::InvalidArgument("entry \"" + e.path +
                                  "\": unsupported file type (sockets and tar extensions "
                                  "other than files, directories, links, devices and fifos)");
  }
  if (comps.empty()) {  // "./": the root directory's own metadata
    if (e.type != TarEntry::Type::kDir) {
      return Error::InvalidArgument("entry \"" + e.path + "\" names the root but is not a directory");
    }
    CopyMetadata(e, root_->inode.get());
    return Ok();
  }
  const std::string name = comps.back();
  if (name.starts_with(kWhiteoutPrefix)) return ApplyWhiteout(comps, layer, e.path);
  NFC_ASSIGN_OR_RETURN(Dentry * parent, WalkDir(comps, comps.size() - 1, layer, true, e.path, 0));

  auto existing = parent->children.find(name);
  Dentry* replaced = existing != parent->children.end() ? existing->second.get() : nullptr;
  if (e.type == TarEntry::Type::kDir && replaced && replaced->IsDir()) {
    CopyMetadata(e, replaced->inode.get());
    replaced->layer = layer;
    return Ok();
  }
  std::shared_ptr<Inode> inode;
  if (e.type == TarEntry::Type::kHardlink) {
    NFC_ASSIGN_OR_RETURN(Dentry * target, HardLinkTarget(layer, e));
    if (target == replaced) return Ok();  // a link to itself
    inode = target->inode;
  } else {
    NFC_ASSIGN_OR_RETURN(inode, NewInode(layer, entry_index, e));
  }
  auto d = std::make_unique<Dentry>();
  d->name = name;
  d->parent = parent;
  d->layer = layer;
  d->inode = std::move(inode);
  if (replaced) {
    existing->second = std::move(d);
  } else {
    parent->children.emplace(name, std::move(d));
  }
  return Ok();
}

Status LayerTree::ApplyWhiteout(const std::vector<std::string>& comps, int layer,
                                const std::string& entry_path) {
  // A whiteout only hides things; if its directory does not exist there is nothing to hide.
  auto dir = WalkDir(comps, comps.size() - 1, layer, false, entry_path, 0);
  if (!dir.ok()) return Ok();
  Dentry* parent = *dir;
  const std::string& name = comps.back();
  if (name == kOpaqueMarker) {
    HideLower(parent, layer);
    return Ok();
  }
  if (name.starts_with(".wh..wh.")) return Ok();  // aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): no content
  std::string hidden = name.substr(kWhiteoutPrefix.size());
  if (hidden.empty() || hidden == "." || hidden == "..") {
    return Error::InvalidArgument("entry \"" + entry_path + "\": malformed whiteout");
  }
  parent->children.erase(hidden);
  return Ok();
}

Result<Dentry*> LayerTree::HardLinkTarget(int layer, const TarEntry& e) {
  NFC_ASSIGN_OR_RETURN(auto tcomps, SplitPath(e.link_target, "hard link target of \"" + e.path + "\""));
  if (tcomps.empty()) {
    return Error::InvalidArgument("entry \"" + e.path + "\": hard link to the root directory");
  }
  NFC_ASSIGN_OR_RETURN(Dentry * tparent, WalkDir(tcomps, tcomps.size() - 1, layer, false, e.path, 0));
  auto t = tparent->children.find(tcomps.back());
  if (t == tparent->children.end()) {
    return Error::InvalidArgument("entry \"" + e.path + "\": hard link target \"" + e.link_target +
                                  "\" does not exist");
  }
  if (t->second->IsDir()) {
    return Error::InvalidArgument("entry \"" + e.path + "\": hard link to directory \"" + e.link_target +
                                  "\"");
  }
  return t->second.get();
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
