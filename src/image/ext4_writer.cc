#include "image/ext4_writer.h"

extern "C" {
#include <et/com_err.h>
}
#include <ext2fs/ext2fs.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <mutex>

#include "base/process.h"
#include "image/mke2fs.h"

namespace nfc::image {
namespace {

constexpr uint64_t kBlockSize = 4096;
constexpr size_t kCopyBuffer = 1 << 20;         // file data copied through user space (no copy_file_range)
constexpr uint64_t kWritebackChunk = 64 << 20;  // start the image's writeback after this much new data

// libext2fs passes errno values through as error codes (a full disk under unix_io is ENOSPC): those keep
// their errno's code, so a full image cache stays a transient kResourceExhausted.
Error Ext2Error(errcode_t err, const std::string& what) {
  if (err > 0 && err < 4096) return Error::Sys(static_cast<int>(err), what);
  return Error::Internal(what + ": " + error_message(err));
}

uint64_t DivUp(uint64_t a, uint64_t b) {
  return (a + b - 1) / b;
}

int FileType(uint32_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return EXT2_FT_REG_FILE;
    case S_IFDIR:
      return EXT2_FT_DIR;
    case S_IFLNK:
      return EXT2_FT_SYMLINK;
    case S_IFCHR:
      return EXT2_FT_CHRDEV;
    case S_IFBLK:
      return EXT2_FT_BLKDEV;
    case S_IFIFO:
      return EXT2_FT_FIFO;
    default:
      return EXT2_FT_UNKNOWN;
  }
}

void SetTimes(ext2_inode_large* in, int64_t sec, uint32_t nsec) {
  // Low 32 bits in the base field; the extra field holds nanoseconds << 2 and two epoch bits (years past
  // 2038).
  uint32_t extra = (nsec << 2) | (static_cast<uint32_t>((sec - static_cast<int32_t>(sec)) >> 32) & 3);
  in->i_atime = in->i_mtime = in->i_ctime = static_cast<uint32_t>(sec);
  in->i_crtime = static_cast<uint32_t>(sec);
  in->i_atime_extra = in->i_mtime_extra = in->i_ctime_extra = in->i_crtime_extra = extra;
}

std::string PathOf(const Dentry* d) {
  if (!d->parent) return "/";
  std::string p;
  for (; d->parent; d = d->parent) p = "/" + d->name + p;
  return p;
}

}  // namespace

Ext4Geometry EstimateGeometry(Dentry* root, const TreeStats& stats) {
  uint64_t blocks = 0;
  std::vector<Dentry*> stack{root};
  std::vector<const Inode*> seen;
  while (!stack.empty()) {
    Dentry* d = stack.back();
    stack.pop_back();
    const Inode& ino = *d->inode;
    if (d->IsDir()) {
      uint64_t bytes = 24;  // "." and ".."
      for (auto& [name, c] : d->children) {
        bytes += 8 + ((name.size() + 3) & ~size_t{3});
        stack.push_back(c.get());
      }
      blocks += DivUp(bytes, kBlockSize - 512) + 1;  // linear dirs fill blocks unevenly; one block of slack
    } else if (S_ISREG(ino.mode)) {
      uint64_t n = DivUp(ino.size, kBlockSize);
      const uint64_t leaves =
          n > uint64_t{4} * 32768 ? DivUp(n, uint64_t{32768} * 340) + 1 : 0;  // huge files
      blocks += n + leaves;
    } else if (S_ISLNK(ino.mode) && ino.symlink_target.size() >= 60) {
      blocks += 1;
    }
    size_t xattr_bytes = 0;
    for (const auto& [k, v] : ino.xattrs) xattr_bytes += k.size() + v.size() + 20;
    if (xattr_bytes > 96) blocks += DivUp(xattr_bytes, kBlockSize);  // does not fit beside a 256-byte inode
  }
  Ext4Geometry g;
  g.data_blocks = blocks;
  g.inodes = std::max<uint64_t>(stats.inodes + stats.inodes / 10 + 64, 256);
  uint64_t inode_table_blocks = DivUp(g.inodes * 256, kBlockSize);
  uint64_t total = blocks + blocks / 10 + inode_table_blocks + (8 << 20) / kBlockSize;
  total += 2 * DivUp(total, 32768) + 64;  // bitmaps per group, superblock backups, group descriptors
  g.blocks = total;
  return g;
}

Ext4Writer::~Ext4Writer() {
  if (fs_) ext2fs_close_free(&fs_);
}

namespace {

// Sizes path to the geometry and lays out an empty ext4 there with mke2fs: without a journal (the image is
// mounted read-only), without reserved blocks, without resize reservations, and without zeroing inode tables
// (the file is sparse).
Status Format(const std::string& path, const Ext4Geometry& g, const std::string& label) {
  {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) return Error::Errno("create " + path);
    if (::ftruncate(fd.get(), static_cast<off_t>(g.blocks * kBlockSize)) != 0) {
      return Error::Errno("size " + path);
    }
  }
  SpawnOptions so;
  so.argv = Mke2fsArgv(path, label,
                       {"-I", "256", "-N", std::to_string(g.inodes), "-O", "^has_journal,^resize_inode", "-E",
                        "lazy_itable_init=1,nodiscard,root_owner=0:0"},
                       g.blocks);
  // A full cache filesystem comes back as kResourceExhausted.
  NFC_RETURN_IF_ERROR_CTX(RunToCompletion(std::move(so)), "format " + path);
  return Ok();
}

Result<ext2_filsys> OpenFs(const std::string& path) {
  static std::once_flag error_table;
  std::call_once(error_table, [] { initialize_ext2_error_table(); });  // readable libext2fs error messages
  ext2_filsys fs = nullptr;
  errcode_t e =
      ext2fs_open2(path.c_str(), nullptr, EXT2_FLAG_RW | EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs);
  if (e) return Ext2Error(e, "open new filesystem " + path);
  if ((e = ext2fs_read_bitmaps(fs))) {
    ext2fs_close_free(&fs);
    return Ext2Error(e, "read bitmaps of " + path);
  }
  return fs;
}

}  // namespace

Result<std::unique_ptr<Ext4Writer>> Ext4Writer::Create(const std::string& path, const Ext4Geometry& geometry,
                                                       const std::string& label) {
  Ext4Geometry g = geometry;
  for (int attempt = 0;; ++attempt) {
    NFC_RETURN_IF_ERROR(Format(path, g, label));
    NFC_ASSIGN_OR_RETURN(ext2_filsys fs, OpenFs(path));
    uint64_t free_blocks = ext2fs_free_blocks_count(fs->super);
    if (free_blocks >= g.data_blocks + g.data_blocks / 20 + 64 || attempt >= 3) return Adopt(path, fs);
    ext2fs_close_free(&fs);
    g.blocks += (g.data_blocks + g.data_blocks / 20 + 64 - free_blocks) * 2;
  }
}

Result<std::unique_ptr<Ext4Writer>> Ext4Writer::OpenFormatted(const std::string& path) {
  NFC_ASSIGN_OR_RETURN(ext2_filsys fs, OpenFs(path));
  return Adopt(path, fs);
}

Result<std::unique_ptr<Ext4Writer>> Ext4Writer::Adopt(const std::string& path,
                                                      struct struct_ext2_filsys* fs) {
  std::unique_ptr<Ext4Writer> w(new Ext4Writer());
  w->path_ = path;
  w->fs_ = fs;
  NFC_RETURN_IF_ERROR(w->RemoveLostFound());
  w->goal_ = 0;
  w->data_fd_ = UniqueFd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!w->data_fd_) return Error::Errno("open " + path + " for data");
  return w;
}

// mke2fs always creates /lost+found; an image root must hold exactly the image's files, and a read-only
// filesystem is never repaired into it.
Status Ext4Writer::RemoveLostFound() {
  ext2_ino_t ino = 0;
  errcode_t e = ext2fs_lookup(fs_, EXT2_ROOT_INO, "lost+found", 10, nullptr, &ino);
  if (e == EXT2_ET_FILE_NOT_FOUND) return Ok();
  if (e) return Ext2Error(e, "look up lost+found");
  if ((e = ext2fs_unlink(fs_, EXT2_ROOT_INO, "lost+found", ino, 0))) return Ext2Error(e, "unlink lost+found");
  ext2_inode_large in{};
  if ((e = ext2fs_read_inode_full(fs_, ino, reinterpret_cast<ext2_inode*>(&in), sizeof in))) {
    return Ext2Error(e, "read lost+found");
  }
  if ((e = ext2fs_punch(fs_, ino, reinterpret_cast<ext2_inode*>(&in), nullptr, 0, ~0ULL))) {
    return Ext2Error(e, "free lost+found blocks");
  }
  in.i_links_count = 0;
  in.i_size = 0;
  in.i_dtime = static_cast<uint32_t>(fs_->now ? fs_->now : time(nullptr));
  if ((e = ext2fs_write_inode_full(fs_, ino, reinterpret_cast<ext2_inode*>(&in), sizeof in))) {
    return Ext2Error(e, "write lost+found");
  }
  ext2fs_inode_alloc_stats2(fs_, ino, -1, 1);
  ext2_inode_large root{};
  if ((e = ext2fs_read_inode_full(fs_, EXT2_ROOT_INO, reinterpret_cast<ext2_inode*>(&root), sizeof root))) {
    return Ext2Error(e, "read root inode");
  }
  root.i_links_count--;
  if ((e = ext2fs_write_inode_full(fs_, EXT2_ROOT_INO, reinterpret_cast<ext2_inode*>(&root), sizeof root))) {
    return Ext2Error(e, "write root inode");
  }
  return Ok();
}

Status Ext4Writer::Link(uint32_t dir, const std::string& name, uint32_t ino, int file_type) {
  errcode_t e = ext2fs_link(fs_, dir, name.c_str(), ino, file_type);
  if (e == EXT2_ET_DIR_NO_SPACE) {
    if ((e = ext2fs_expand_dir(fs_, dir))) return Ext2Error(e, "expand directory for " + name);
    e = ext2fs_link(fs_, dir, name.c_str(), ino, file_type);
  }
  if (e) return Ext2Error(e, "link " + name);
  return Ok();
}

Status Ext4Writer::SetInodeMetadata(uint32_t ino, const Inode& src, bool keep_links) {
  ext2_inode_large in{};
  errcode_t e = ext2fs_read_inode_full(fs_, ino, reinterpret_cast<ext2_inode*>(&in), sizeof in);
  if (e) return Ext2Error(e, "read inode " + std::to_string(ino));
  in.i_mode = static_cast<uint16_t>(src.mode);
  in.i_uid = static_cast<uint16_t>(src.uid);
  ext2fs_set_i_uid_high(in, src.uid >> 16);
  in.i_gid = static_cast<uint16_t>(src.gid);
  ext2fs_set_i_gid_high(in, src.gid >> 16);
  if (!keep_links) in.i_links_count = static_cast<uint16_t>(src.nlink);
  if (in.i_extra_isize < sizeof(ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE) {
    in.i_extra_isize = sizeof(ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE;
  }
  SetTimes(&in, src.mtime, src.mtime_nsec);
  if ((e = ext2fs_write_inode_full(fs_, ino, reinterpret_cast<ext2_inode*>(&in), sizeof in))) {
    return Ext2Error(e, "write inode " + std::to_string(ino));
  }
  return Ok();
}

Status Ext4Writer::SetXattrs(uint32_t ino, const Inode& src, const std::string& path) {
  if (src.xattrs.empty()) return Ok();
  struct ext2_xattr_handle* h = nullptr;
  errcode_t e = ext2fs_xattrs_open(fs_, ino, &h);
  if (e) return Ext2Error(e, "xattrs of " + path);
  if ((e = ext2fs_xattrs_read(h))) {
    ext2fs_xattrs_close(&h);
    return Ext2Error(e, "read xattrs of " + path);
  }
  for (const auto& [name, value] : src.xattrs) {
    if ((e = ext2fs_xattr_set(h, name.c_str(), value.data(), value.size()))) {
      ext2fs_xattrs_close(&h);
      return Ext2Error(e, "set xattr " + name + " on " + path);
    }
  }
  if ((e = ext2fs_xattrs_close(&h))) return Ext2Error(e, "write xattrs of " + path);
  return Ok();
}

Status Ext4Writer::CreateEntry(Dentry* d, uint32_t parent_ino) {
  Inode& src = *d->inode;
  const std::string path = PathOf(d);
  if (src.ext4_ino != 0) {  // another name of an inode already created: a hard link
    return Link(parent_ino, d->name, src.ext4_ino, FileType(src.mode));
  }
  ext2_ino_t ino = 0;
  errcode_t e = ext2fs_new_inode(fs_, parent_ino, static_cast<int>(src.mode), nullptr, &ino);
  if (e) return Ext2Error(e, "allocate inode for " + path);
  if (S_ISDIR(src.mode)) {
    // Created unlinked, then linked by Link(), which grows a full parent directory (ext2fs_mkdir does not).
    if ((e = ext2fs_mkdir(fs_, parent_ino, ino, nullptr))) return Ext2Error(e, "mkdir " + path);
    NFC_RETURN_IF_ERROR(Link(parent_ino, d->name, ino, EXT2_FT_DIR));
    src.ext4_ino = ino;
    NFC_RETURN_IF_ERROR(SetInodeMetadata(ino, src, /*keep_links=*/true));
  } else if (S_ISLNK(src.mode)) {
    if ((e = ext2fs_symlink(fs_, parent_ino, ino, nullptr, src.symlink_target.c_str()))) {
      return Ext2Error(e, "symlink " + path);
    }
    src.ext4_ino = ino;
    NFC_RETURN_IF_ERROR(SetInodeMetadata(ino, src, false));
    NFC_RETURN_IF_ERROR(Link(parent_ino, d->name, ino, EXT2_FT_SYMLINK));
  } else {
    ext2_inode_large in{};
    in.i_mode = static_cast<uint16_t>(src.mode);
    in.i_links_count = static_cast<uint16_t>(src.nlink);
    in.i_extra_isize = sizeof(ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE;
    if (S_ISREG(src.mode)) {
      in.i_flags = EXT4_EXTENTS_FL;
      // An empty extent tree root in i_block (what the kernel creates for a new file).
      auto* eh = reinterpret_cast<ext3_extent_header*>(in.i_block);
      eh->eh_magic = ext2fs_cpu_to_le16(EXT3_EXT_MAGIC);
      eh->eh_max = ext2fs_cpu_to_le16((sizeof(in.i_block) - sizeof(*eh)) / sizeof(ext3_extent));
      if ((e = ext2fs_inode_size_set(fs_, reinterpret_cast<ext2_inode*>(&in), src.size))) {
        return Ext2Error(e, "size of " + path);
      }
    } else if (S_ISCHR(src.mode) || S_ISBLK(src.mode)) {
      if (src.dev_major < 256 && src.dev_minor < 256) {
        in.i_block[0] = src.dev_major * 256 + src.dev_minor;
      } else {
        in.i_block[1] = (src.dev_minor & 0xff) | (src.dev_major << 8) | ((src.dev_minor & ~0xffu) << 12);
      }
    }
    if ((e = ext2fs_write_inode_full(fs_, ino, reinterpret_cast<ext2_inode*>(&in), sizeof in))) {
      return Ext2Error(e, "write inode of " + path);
    }
    ext2fs_inode_alloc_stats2(fs_, ino, +1, 0);
    src.ext4_ino = ino;
    NFC_RETURN_IF_ERROR(SetInodeMetadata(ino, src, false));
    NFC_RETURN_IF_ERROR(Link(parent_ino, d->name, ino, FileType(src.mode)));
  }
  return SetXattrs(ino, src, path);
}

Status Ext4Writer::CreateTree(Dentry* root) {
  root->inode->ext4_ino = EXT2_ROOT_INO;
  NFC_RETURN_IF_ERROR(SetInodeMetadata(EXT2_ROOT_INO, *root->inode, /*keep_links=*/true));
  NFC_RETURN_IF_ERROR(SetXattrs(EXT2_ROOT_INO, *root->inode, "/"));
  // Breadth-first: a directory's entries are linked one after another, so its blocks fill sequentially.
  std::vector<Dentry*> queue{root};
  for (size_t i = 0; i < queue.size(); ++i) {
    Dentry* dir = queue[i];
    for (auto& [_, child] : dir->children) {
      NFC_RETURN_IF_ERROR(CreateEntry(child.get(), dir->inode->ext4_ino));
      if (child->IsDir()) queue.push_back(child.get());
    }
  }
  return Ok();
}

Status Ext4Writer::CopyIn(int src, uint64_t src_offset, uint64_t disk_offset, uint64_t len) {
  // Consecutive files usually follow each other both in the spool (block-aligned, zero-padded) and on disk:
  // one copy for the run, with the padding, instead of one per file.
  Copy& p = pending_;
  const uint64_t rounded = DivUp(p.len, kBlockSize) * kBlockSize;
  if (p.len > 0 && src == p.src && src_offset == p.src_offset + rounded &&
      disk_offset == p.disk_offset + rounded) {
    p.len = rounded + len;
    return Ok();
  }
  NFC_RETURN_IF_ERROR(FlushCopies());
  pending_ = {src, src_offset, disk_offset, len};
  return Ok();
}

Status Ext4Writer::FlushCopies() {
  Copy c = pending_;
  pending_ = {};
  while (c.len > 0) {
    ssize_t n;
    if (kernel_copy_) {
      auto in = static_cast<loff_t>(c.src_offset);
      auto out = static_cast<loff_t>(c.disk_offset);
      n = ::copy_file_range(c.src, &in, data_fd_.get(), &out, c.len, 0);
      if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
        kernel_copy_ = false;  // another filesystem or an old kernel: through a buffer from now on
        continue;
      }
    } else {
      if (buf_.empty()) buf_.resize(kCopyBuffer);
      n = ::pread(c.src, buf_.data(), std::min<uint64_t>(c.len, buf_.size()),
                  static_cast<off_t>(c.src_offset));
      if (n > 0) NFC_RETURN_IF_ERROR(WriteAll(c.disk_offset, buf_.data(), static_cast<size_t>(n)));
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::Errno("copy file data into " + path_);
    }
    if (n == 0) return Error::Internal("the spool ended before the file's data");
    c.src_offset += static_cast<uint64_t>(n);
    c.disk_offset += static_cast<uint64_t>(n);
    c.len -= static_cast<uint64_t>(n);
    unsynced_ += static_cast<uint64_t>(n);
  }
  // Start writing back what is there, so that Finish's fsync does not wait for the whole image at once.
  if (unsynced_ >= kWritebackChunk) {
    unsynced_ = 0;
    if (::sync_file_range(data_fd_.get(), 0, 0, SYNC_FILE_RANGE_WRITE) != 0) {
      return Error::Errno("sync_file_range " + path_);
    }
  }
  return Ok();
}

Status Ext4Writer::WriteAll(uint64_t offset, const char* p, size_t len) {
  while (len > 0) {
    ssize_t n = ::pwrite(data_fd_.get(), p, len, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::Errno("write " + path_);
    }
    p += n;
    offset += static_cast<uint64_t>(n);
    len -= static_cast<size_t>(n);
  }
  return Ok();
}

Status Ext4Writer::WriteFileData(Inode* inode, int src_fd, uint64_t src_offset) {
  const uint32_t ino = inode->ext4_ino;
  const uint64_t nblocks = DivUp(inode->size, kBlockSize);
  if (nblocks == 0) return Ok();
  errcode_t e = ext2fs_fallocate(fs_, EXT2_FALLOCATE_FORCE_INIT, ino, nullptr, goal_, 0, nblocks);
  if (e)
    return Ext2Error(e, "allocate " + std::to_string(nblocks) + " blocks for inode " + std::to_string(ino));
  ext2_extent_handle_t h = nullptr;
  if ((e = ext2fs_extent_open(fs_, ino, &h))) return Ext2Error(e, "open extents");
  // The extents in logical order; each is copied from the spool as one range.
  ext2fs_extent ext{};
  Status st = Ok();
  e = ext2fs_extent_get(h, EXT2_EXTENT_ROOT, &ext);
  while (!e && st.ok()) {
    if ((ext.e_flags & EXT2_EXTENT_FLAGS_LEAF) && !(ext.e_flags & EXT2_EXTENT_FLAGS_SECOND_VISIT)) {
      const uint64_t start = ext.e_lblk * kBlockSize;
      if (start < inode->size) {
        const uint64_t len = std::min<uint64_t>(uint64_t{ext.e_len} * kBlockSize, inode->size - start);
        st = CopyIn(src_fd, src_offset + start, ext.e_pblk * kBlockSize, len);
      }
      goal_ = std::max<uint64_t>(goal_, ext.e_pblk + ext.e_len);
    }
    e = ext2fs_extent_get(h, EXT2_EXTENT_NEXT, &ext);
  }
  ext2fs_extent_free(h);
  NFC_RETURN_IF_ERROR(st);
  if (e != EXT2_ET_EXTENT_NO_NEXT) return Ext2Error(e, "walk extents");
  return Ok();
}

Status Ext4Writer::Finish() {
  NFC_RETURN_IF_ERROR(FlushCopies());
  errcode_t e = ext2fs_close_free(&fs_);
  if (e) return Ext2Error(e, "close filesystem " + path_);
  if (::fsync(data_fd_.get()) != 0) return Error::Errno("fsync " + path_);
  return Ok();
}

}  // namespace nfc::image
