// LayerTree: the root filesystem an image's layers describe, computed from tar headers alone.
//
// Each entry is applied the way containerd's applier (pkg/archive applyNaive, the code behind Docker's and
// containerd's image stores) applies it, so the tree is the one those tools would unpack:
//  - names are cleaned like Go's filepath.Clean; absolute names are taken from the root ("/etc/x" is
//    "etc/x"), an entry naming the root itself is ignored, and a name that still leads outside the root
//    after cleaning is refused (Docker refuses it; containerd would clamp it to the root);
//  - parent directories are found the way containerd's RootPath finds them: symlinks in the tree are
//    followed, bounded by the root ("/" and ".." never leave it), and missing directories are created
//    (0755, root), also for whiteout entries;
//  - ".wh.<name>" hides <name> and ".wh..wh..opq" hides the contents of its directory, as far as they came
//    from lower layers (what the overlay snapshotter and the OCI spec do; entries of the whiteout's own
//    layer stay, in whatever order they come);
//  - a later entry replaces an earlier one at the same path, except that a directory over a directory
//    takes the new metadata and keeps the contents;
//  - a hard link needs an existing non-directory target and gives the shared inode its own header's owner,
//    mode, time and xattrs (containerd chowns, chmods and touches the link);
//  - xattrs: containerd does not set trusted.* ones, and the kernel refuses user.* ones on anything but
//    files and directories (containerd skips those); times before 1970 become 0, as containerd's boundTime
//    makes them; device numbers are what mknod(2) would make of them (12-bit major, 20-bit minor).
// Regular-file contents are not held here: each inode remembers which (layer, entry) supplies its data, so
// the ext4 writer can stream only the winning copies. Symlink entries themselves are kept as they are: they
// are data inside the image and are only ever followed by the guest kernel within the VM's own root (the
// conversion never writes through the host filesystem).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "image/layer_reader.h"

namespace nfc::image {

struct Inode {
  uint32_t mode = 0;  // S_IFMT type bits | permission bits
  uint32_t uid = 0, gid = 0;
  int64_t mtime = 0;
  uint32_t mtime_nsec = 0;
  uint64_t size = 0;
  std::string symlink_target;
  uint32_t dev_major = 0, dev_minor = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
  int layer = -1;         // regular files: the layer whose entry holds the data
  uint64_t entry = 0;     //   and that entry's index within the layer
  uint32_t ext4_ino = 0;  // assigned by the writer
  uint32_t nlink = 0;     // computed by Finalize()
};

struct Dentry {
  std::string name;
  Dentry* parent = nullptr;
  std::shared_ptr<Inode> inode;
  int touched = -1;  // the last layer that created this name or put something beneath it; whiteouts of
                     // that layer spare it
  std::map<std::string, std::unique_ptr<Dentry>>
      children;  // directories only; sorted for reproducible output
  bool IsDir() const;
};

struct TreeStats {
  uint64_t inodes = 0;
  uint64_t dirs = 0;
  uint64_t regular_files = 0;
  uint64_t file_bytes = 0;
  uint64_t hardlinks = 0;
};

class LayerTree {
 public:
  LayerTree();

  // Applies one tar entry of layer `layer` (entry_index counts entries of that layer from 0).
  Status Apply(int layer, uint64_t entry_index, const TarEntry& entry);

  // Computes link counts; call once after the last layer.
  TreeStats Finalize();

  Dentry* root() { return root_.get(); }
  // Looks a path up without following a final symlink; nullptr if missing.
  Dentry* Find(const std::string& path);

 private:
  // The directory at comps, following symlinks like containerd's RootPath. With create, missing directories
  // are made (mkparent); without, a missing one gives nullptr.
  Result<Dentry*> ResolveDir(std::vector<std::string> comps, int layer, bool create,
                             const std::string& entry_path);
  static Dentry* AddDir(Dentry* parent, const std::string& name, int layer);
  static void HideLower(Dentry* dir, int layer);
  static Status ApplyWhiteout(Dentry* dir, const std::string& name, int layer, const std::string& entry_path);
  // The inode of the existing non-directory a hard link entry names.
  Result<std::shared_ptr<Inode>> HardLinkTarget(int layer, const TarEntry& entry);

  std::unique_ptr<Dentry> root_;
};

}  // namespace nfc::image
