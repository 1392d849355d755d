// LayerTree: the root filesystem an image's layers describe, computed from tar headers alone.
//
// Layers are applied in order with the OCI rules: ".wh.<name>" removes <name> from lower layers, a directory
// containing ".wh..wh..opq" hides everything lower layers put in it, a later entry replaces an earlier one at
// the same path (a directory over a directory merges). Regular-file contents are not held here: each inode
// remembers which (layer, entry) supplies its data, so the ext4 writer can stream only the winning copies.
//
// Hostile input is rejected with an error naming the entry: absolute paths, ".." components, hard links to
// missing, escaping or directory targets, and writes through a symlink that leads outside the root. Symlink
// entries themselves are kept as they are: they are data inside the image and are only ever followed by the
// guest kernel within the VM's own root (the conversion never writes through the host filesystem).
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
  int layer = 0;  // the layer that created this name (opaque directories hide names from lower layers)
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
  Result<std::vector<std::string>> SplitPath(const std::string& path, const std::string& what) const;
  // Walks to the directory for components [0, n), following symlinks within the root. create_missing makes
  // absent directories (as Docker does for entries whose parents are not in the layer).
  Result<Dentry*> WalkDir(const std::vector<std::string>& comps, size_t n, int layer, bool create_missing,
                          const std::string& entry_path, int depth);
  Result<Dentry*> ResolveSymlinkDir(Dentry* link, int layer, const std::string& entry_path, int depth);
  void HideLower(Dentry* dir, int layer);
  Status ApplyWhiteout(const std::vector<std::string>& comps, int layer, const std::string& entry_path);
  // The existing non-directory a hard link entry names.
  Result<Dentry*> HardLinkTarget(int layer, const TarEntry& entry);

  std::unique_ptr<Dentry> root_;
};

}  // namespace nfc::image
