#include "ext4_snapshot.h"

extern "C" {
#include <et/com_err.h>
}
#include <dirent.h>
#include <ext2fs/ext2fs.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
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

std::string TypeName(uint32_t mode) {
  return S_ISDIR(mode)    ? "dir"
         : S_ISREG(mode)  ? "file"
         : S_ISLNK(mode)  ? "symlink"
         : S_ISCHR(mode)  ? "chr"
         : S_ISBLK(mode)  ? "blk"
         : S_ISFIFO(mode) ? "fifo"
                          : "other";
}

std::string ReadContent(ext2_filsys fs, ext2_ino_t ino, uint64_t size) {
  ext2_file_t f = nullptr;
  std::string content;
  if (ext2fs_file_open(fs, ino, 0, &f) != 0) return content;
  content.resize(size);
  unsigned int got = 0;
  size_t off = 0;
  while (off < size && ext2fs_file_read(f, content.data() + off, size - off, &got) == 0 && got > 0)
    off += got;
  content.resize(off);
  ext2fs_file_close(f);
  return content;
}

TreeEntry DescribeInode(ext2_filsys fs, ext2_ino_t ino) {
  ext2_inode_large in{};
  ext2fs_read_inode_full(fs, ino, reinterpret_cast<ext2_inode*>(&in), sizeof in);
  TreeEntry t;
  t.type = TypeName(in.i_mode);
  t.mode = in.i_mode & 07777;
  t.uid = inode_uid(in);
  t.gid = inode_gid(in);
  t.nlink = in.i_links_count;
  t.ino = ino;
  t.size = EXT2_I_SIZE(&in);
  if (S_ISLNK(in.i_mode) && ext2fs_is_fast_symlink(reinterpret_cast<ext2_inode*>(&in))) {
    t.target.assign(reinterpret_cast<const char*>(in.i_block), t.size);
  } else if (S_ISLNK(in.i_mode)) {
    t.target = ReadContent(fs, ino, t.size);
  } else if (S_ISREG(in.i_mode)) {
    t.sha256 = Sha256::DigestOf(ReadContent(fs, ino, t.size)).substr(7);
  }
  if (S_ISCHR(in.i_mode) || S_ISBLK(in.i_mode)) {
    if (in.i_block[0]) {
      t.dev_major = (in.i_block[0] >> 8) & 255;
      t.dev_minor = in.i_block[0] & 255;
    } else {
      t.dev_major = (in.i_block[1] & 0xfff00) >> 8;
      t.dev_minor = (in.i_block[1] & 0xff) | ((in.i_block[1] >> 12) & 0xfff00);
    }
  }
  struct ext2_xattr_handle* h = nullptr;
  if (ext2fs_xattrs_open(fs, ino, &h) == 0) {
    if (ext2fs_xattrs_read(h) == 0) {
      ext2fs_xattrs_iterate(
          h,
          [](char* name, char* value, size_t len, void* priv) -> int {
            (*static_cast<std::map<std::string, std::string>*>(priv))[name] = std::string(value, len);
            return 0;
          },
          &t.xattrs);
    }
    ext2fs_xattrs_close(&h);
  }
  // 32 bits of seconds, then two epoch bits and the nanoseconds in the extra field.
  t.mtime = static_cast<int32_t>(in.i_mtime) + (static_cast<int64_t>(in.i_mtime_extra & 3) << 32);
  t.mtime_nsec = in.i_mtime_extra >> 2;
  return t;
}

}  // namespace

Result<std::map<std::string, TreeEntry>> ReadExt4Tree(const std::string& image_path) {
  ext2_filsys fs = nullptr;
  errcode_t e = ext2fs_open2(image_path.c_str(), nullptr, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs);
  if (e) return Error::Internal("open " + image_path + ": " + error_message(e));
  std::map<std::string, TreeEntry> out;
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
      out[path] = DescribeInode(fs, ent.ino);
      if (out[path].type == "dir") walk(ent.ino, path);
    }
  };
  walk(EXT2_ROOT_INO, "");
  ext2fs_close_free(&fs);
  return out;
}

Result<std::map<std::string, TreeEntry>> ReadHostTree(const std::string& root) {
  std::map<std::string, TreeEntry> out;
  std::function<Status(const std::string&)> walk = [&](const std::string& rel) -> Status {
    const std::string dir = root + rel;
    DIR* d = ::opendir(dir.c_str());
    if (!d) return Error::Errno("opendir " + dir);
    std::vector<std::string> names;
    while (struct dirent* de = ::readdir(d)) {
      std::string n = de->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
    for (const auto& n : names) {
      const std::string path = rel + "/" + n, full = root + path;
      struct stat st {};
      if (::lstat(full.c_str(), &st) != 0) return Error::Errno("lstat " + full);
      TreeEntry t;
      t.type = TypeName(st.st_mode);
      t.mode = st.st_mode & 07777;
      t.uid = st.st_uid;
      t.gid = st.st_gid;
      t.nlink = static_cast<uint32_t>(st.st_nlink);
      t.ino = st.st_ino;
      t.size = static_cast<uint64_t>(st.st_size);
      if (S_ISLNK(st.st_mode)) {
        std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
        ssize_t len = ::readlink(full.c_str(), target.data(), target.size());
        if (len < 0) return Error::Errno("readlink " + full);
        target.resize(static_cast<size_t>(len));
        t.target = target;
      } else if (S_ISREG(st.st_mode)) {
        std::ifstream f(full, std::ios::binary);
        std::string content((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        t.sha256 = Sha256::DigestOf(content).substr(7);
      } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
        t.dev_major = major(st.st_rdev);
        t.dev_minor = minor(st.st_rdev);
      }
      char names_buf[65536];
      ssize_t len = ::llistxattr(full.c_str(), names_buf, sizeof names_buf);
      for (ssize_t i = 0; len > 0 && i < len; i += static_cast<ssize_t>(std::strlen(names_buf + i)) + 1) {
        std::string value(65536, '\0');
        ssize_t vlen = ::lgetxattr(full.c_str(), names_buf + i, value.data(), value.size());
        if (vlen >= 0) t.xattrs[names_buf + i] = value.substr(0, static_cast<size_t>(vlen));
      }
      t.mtime = st.st_mtim.tv_sec;
      t.mtime_nsec = static_cast<uint32_t>(st.st_mtim.tv_nsec);
      out[path] = t;
      if (S_ISDIR(st.st_mode)) NFC_RETURN_IF_ERROR(walk(path));
    }
    return Ok();
  };
  NFC_RETURN_IF_ERROR(walk(""));
  return out;
}

Result<std::map<std::string, std::string>> SnapshotExt4(const std::string& image_path) {
  NFC_ASSIGN_OR_RETURN(auto tree, ReadExt4Tree(image_path));
  std::map<std::string, std::string> out;
  std::map<uint64_t, int> link_ids;
  for (const auto& [path, t] : tree) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "%s %04o %u:%u nlink=%u", t.type.c_str(), t.mode, t.uid, t.gid, t.nlink);
    std::string desc = buf;
    if (t.type != "dir" && t.nlink > 1) {
      auto [it, added] = link_ids.emplace(t.ino, static_cast<int>(link_ids.size()));
      desc += " ino=#" + std::to_string(it->second);
    }
    if (t.type == "file") desc += " size=" + std::to_string(t.size) + " sha=" + t.sha256.substr(0, 12);
    if (t.type == "symlink") desc += " -> " + t.target;
    if (t.type == "chr" || t.type == "blk") {
      desc += " dev=" + std::to_string(t.dev_major) + ":" + std::to_string(t.dev_minor);
    }
    for (const auto& [k, v] : t.xattrs) desc += " x:" + k + "=" + Hex(v);
    desc += " mtime=" + std::to_string(t.mtime) + "." + std::to_string(t.mtime_nsec);
    out[path] = desc;
  }
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
