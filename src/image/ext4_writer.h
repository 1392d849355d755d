// Ext4Writer: writes a LayerTree into a new ext4 image file directly with libext2fs: no loop device, no
// mount, no root, and no staging directory on the host.
//
// Why not `mke2fs -d <dir>`: it needs the tree unpacked on the host first, and it copies each file through
// libext2fs's 8-block I/O cache one block at a time. Here mke2fs only formats an empty filesystem (a few ms);
// we create inodes and directories with libext2fs, allocate each file's blocks as one contiguous range in
// layer order, and copy file contents from the layers' spools (see layer_scan.h) into the image inside the
// kernel (copy_file_range).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "image/layer_reader.h"
#include "image/layer_tree.h"

struct struct_ext2_filsys;

namespace nfc::image {

struct Ext4Geometry {
  uint64_t blocks = 0;  // 4 KiB blocks
  uint64_t inodes = 0;
  uint64_t data_blocks = 0;  // the blocks our content needs (checked against free space after formatting)
};

// Sizes the filesystem for the tree: content plus metadata plus headroom (10% + 8 MiB).
Ext4Geometry EstimateGeometry(Dentry* root, const TreeStats& stats);

class Ext4Writer {
 public:
  // Formats path (created or truncated) as an empty ext4 of the given geometry and opens it.
  static Result<std::unique_ptr<Ext4Writer>> Create(const std::string& path, const Ext4Geometry& geometry,
                                                    const std::string& label);
  // Opens an empty filesystem that mke2fs made with Create's options (the fuzz target formats one template
  // and copies it for every input instead of running mke2fs each time).
  static Result<std::unique_ptr<Ext4Writer>> OpenFormatted(const std::string& path);
  ~Ext4Writer();

  // Creates every directory, symlink, device node, fifo and regular-file inode (sizes set, no data yet) and
  // all hard links, with owners, modes, times and xattrs.
  Status CreateTree(Dentry* root);
  // Allocates the blocks of a regular file and copies its inode->size bytes of data from src_fd at
  // src_offset (a layer's spool) into them.
  Status WriteFileData(Inode* inode, int src_fd, uint64_t src_offset);
  // Copies what WriteFileData has queued: before the source descriptor is closed.
  Status FlushCopies();
  // Flushes data, writes bitmaps, group descriptors and superblock, fsyncs the file.
  Status Finish();

 private:
  Ext4Writer() = default;
  // Takes an open filesystem over (closing it on failure too).
  static Result<std::unique_ptr<Ext4Writer>> Adopt(const std::string& path, struct struct_ext2_filsys* fs);
  Status RemoveLostFound();
  Status CreateEntry(Dentry* d, uint32_t parent_ino);
  Status SetInodeMetadata(uint32_t ino, const Inode& src, bool keep_links);
  Status SetXattrs(uint32_t ino, const Inode& src, const std::string& path);
  Status Link(uint32_t dir, const std::string& name, uint32_t ino, int file_type);
  // Copies file data into the image, coalescing runs that are contiguous at both ends.
  Status CopyIn(int src, uint64_t src_offset, uint64_t disk_offset, uint64_t len);
  Status WriteAll(uint64_t offset, const char* data, size_t len);

  std::string path_;
  struct struct_ext2_filsys* fs_ = nullptr;
  UniqueFd data_fd_;
  uint64_t goal_ = 0;  // next physical block to allocate file data at (keeps writes sequential)
  struct Copy {
    int src = -1;
    uint64_t src_offset = 0, disk_offset = 0, len = 0;
  };
  Copy pending_;             // the run of file data not copied yet
  bool kernel_copy_ = true;  // copy_file_range works between the spool and the image
  std::vector<char> buf_;    // for copies through user space
  uint64_t unsynced_ = 0;    // file data copied since writeback was last started
};

}  // namespace nfc::image
