#include "ext4_snapshot.h"

extern "C" {
#include <et/com_err.h>
}
#include <ext2fs/ext2fs.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <functional>
#include <vector>

#include "image/sha256.h"

namespace nfc::image::testing {
namespace {

std::string Hex(const std::string& v) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (unsigned char c : v) {
    s += d[c >> 4];
    s += d[c & 15];
  }
  return s;
}

}  // namespace

Result<std::map<std::string, std::string>> SnapshotExt4(const std::string& image_path) {
  ext2_filsys fs = nullptr;
  errcode_t e = ext2fs_open2(image_path.c_str(), nullptr, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs);
  if (e) return Error::Internal("open " + image_path + ": " + error_message(e));
  std::map<std::string, std::string> out;
  std::map<ext2_ino_t, int> link_ids;
  Status status = Ok();
  std::function<void(ext2_ino_t, const std::string&)> walk = [&](ext2_ino_t dir, const std::string& prefix) {
    struct Ent {
      std::string name;
      ext2_ino_t ino;
    };
    std::vector<Ent> ents;
    auto cb = [](ext2_dir_entry* d, int, int, char*, void* priv) -> int {
      auto* v = static_cast<std::vector<Ent>*>(priv);
      std::string name(d->name, ext2fs_dirent_name_len(d));
      if (name != "." && name != "..") v->push_back({name, d->inode});
      return 0;
    };
    ext2fs_dir_iterate(fs, dir, 0, nullptr, cb, &ents);
    for (const auto& ent : ents) {
      std::string path = prefix + "/" + ent.name;
      ext2_inode_large in{};
      ext2fs_read_inode_full(fs, ent.ino, reinterpret_cast<ext2_inode*>(&in), sizeof in);
      char buf[128];
      uint32_t mode = in.i_mode;
      std::string type = S_ISDIR(mode)    ? "dir"
                         : S_ISREG(mode)  ? "file"
                         : S_ISLNK(mode)  ? "symlink"
                         : S_ISCHR(mode)  ? "chr"
                         : S_ISBLK(mode)  ? "blk"
                         : S_ISFIFO(mode) ? "fifo"
                                          : "other";
      std::snprintf(buf, sizeof buf, "%s %04o %u:%u nlink=%u", type.c_str(), mode & 07777, inode_uid(in),
                    inode_gid(in), in.i_links_count);
      std::string desc = buf;
      if (!S_ISDIR(mode) && in.i_links_count > 1) {
        auto [it, added] = link_ids.emplace(ent.ino, static_cast<int>(link_ids.size()));
        desc += " ino=#" + std::to_string(it->second);
      }
      uint64_t size = EXT2_I_SIZE(&in);
      if (S_ISREG(mode) || S_ISLNK(mode)) {
        ext2_file_t f = nullptr;
        std::string content;
        if (S_ISLNK(mode) && ext2fs_is_fast_symlink(reinterpret_cast<ext2_inode*>(&in))) {
          content.assign(reinterpret_cast<const char*>(in.i_block), size);
        } else if (ext2fs_file_open(fs, ent.ino, 0, &f) == 0) {
          content.resize(size);
          unsigned int got = 0;
          size_t off = 0;
          while (off < size && ext2fs_file_read(f, content.data() + off, size - off, &got) == 0 && got > 0) {
            off += got;
          }
          content.resize(off);
          ext2fs_file_close(f);
        }
        if (S_ISREG(mode)) {
          desc += " size=" + std::to_string(size) + " sha=" + Sha256::DigestOf(content).substr(7, 12);
        } else {
          desc += " -> " + content;
        }
      }
      if (S_ISCHR(mode) || S_ISBLK(mode)) {
        uint32_t major, minor;
        if (in.i_block[0]) {
          major = (in.i_block[0] >> 8) & 255;
          minor = in.i_block[0] & 255;
        } else {
          major = (in.i_block[1] & 0xfff00) >> 8;
          minor = (in.i_block[1] & 0xff) | ((in.i_block[1] >> 12) & 0xfff00);
        }
        desc += " dev=" + std::to_string(major) + ":" + std::to_string(minor);
      }
      struct ext2_xattr_handle* h = nullptr;
      if (ext2fs_xattrs_open(fs, ent.ino, &h) == 0) {
        if (ext2fs_xattrs_read(h) == 0) {
          std::map<std::string, std::string> xs;
          ext2fs_xattrs_iterate(
              h,
              [](char* name, char* value, size_t len, void* priv) -> int {
                (*static_cast<std::map<std::string, std::string>*>(priv))[name] = std::string(value, len);
                return 0;
              },
              &xs);
          for (const auto& [k, v] : xs) desc += " x:" + k + "=" + Hex(v);
        }
        ext2fs_xattrs_close(&h);
      }
      uint32_t nsec = in.i_mtime_extra >> 2;
      desc += " mtime=" + std::to_string(in.i_mtime) + "." + std::to_string(nsec);
      out[path] = desc;
      if (S_ISDIR(mode)) walk(ent.ino, path);
    }
  };
  walk(EXT2_ROOT_INO, "");
  ext2fs_close_free(&fs);
  if (!status.ok()) return std::move(status).error();
  return out;
}

Status CheckExt4(const std::string& image_path) {
  std::string cmd = "e2fsck -fn '" + image_path + "' 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return Error::Errno("popen e2fsck");
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
  int status = ::pclose(p);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Error::DataLoss("e2fsck -fn " + image_path + " failed (" + std::to_string(status) + "):\n" + text);
  }
  return Ok();
}

}  // namespace nfc::image::testing
