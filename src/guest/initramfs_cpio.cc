#include "guest/initramfs_cpio.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <set>

#include "base/unique_fd.h"

namespace nfc::guest {
namespace {

void Pad4(std::string& out) {
  while (out.size() % 4 != 0) out.push_back('\0');
}

void AppendHeaderField(std::string& out, uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08X", v);
  out.append(buf, 8);
}

void AppendEntry(std::string& out, uint32_t ino, std::string_view name, uint32_t mode,
                 std::string_view data) {
  out.append("070701");
  AppendHeaderField(out, ino);
  AppendHeaderField(out, mode);
  AppendHeaderField(out, 0);                                   // uid
  AppendHeaderField(out, 0);                                   // gid
  AppendHeaderField(out, (mode & S_IFMT) == S_IFDIR ? 2 : 1);  // nlink
  AppendHeaderField(out, 0);                                   // mtime: fixed, so the archive is reproducible
  AppendHeaderField(out, static_cast<uint32_t>(data.size()));
  AppendHeaderField(out, 0);  // devmajor
  AppendHeaderField(out, 0);  // devminor
  AppendHeaderField(out, 0);  // rdevmajor
  AppendHeaderField(out, 0);  // rdevminor
  AppendHeaderField(out, static_cast<uint32_t>(name.size() + 1));
  AppendHeaderField(out, 0);  // check (unused by newc)
  out.append(name);
  out.push_back('\0');
  Pad4(out);
  out.append(data);
  Pad4(out);
}

Status CheckPath(const std::string& p) {
  if (p.empty() || p[0] == '/' || p.back() == '/')
    return Error::InvalidArgument("cpio: bad entry path \"" + p + "\"");
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    std::string_view part(p.data() + start, end - start);
    if (part.empty() || part == "." || part == "..") {
      return Error::InvalidArgument("cpio: bad entry path \"" + p + "\"");
    }
    start = end + 1;
  }
  return Ok();
}

}  // namespace

Result<std::string> BuildCpio(const std::vector<CpioEntry>& entries) {
  std::string out;
  std::set<std::string> dirs;
  uint32_t ino = 1;
  for (const auto& e : entries) {
    NFC_RETURN_IF_ERROR(CheckPath(e.path));
    if (e.data.size() > 0xffffffffULL)
      return Error::InvalidArgument("cpio: entry \"" + e.path + "\" is too large");
    for (size_t slash = e.path.find('/'); slash != std::string::npos; slash = e.path.find('/', slash + 1)) {
      std::string dir = e.path.substr(0, slash);
      if (dirs.insert(dir).second) AppendEntry(out, ino++, dir, S_IFDIR | 0755, {});
    }
    if ((e.mode & S_IFMT) == S_IFDIR) {
      if (dirs.insert(e.path).second) AppendEntry(out, ino++, e.path, e.mode, {});
    } else if ((e.mode & S_IFMT) == S_IFREG) {
      AppendEntry(out, ino++, e.path, e.mode, e.data);
    } else {
      return Error::InvalidArgument("cpio: entry \"" + e.path + "\" must be a regular file or a directory");
    }
  }
  AppendEntry(out, 0, "TRAILER!!!", 0, {});
  return out;
}

Result<std::string> BuildTaskCpio(const TaskSpec& spec) {
  NFC_RETURN_IF_ERROR_CTX(ValidateTaskSpec(spec), "task spec");
  return BuildCpio({{std::string(kTaskSpecPathInInitramfs), S_IFREG | 0600, TaskSpecToJson(spec)}});
}

Status WriteTaskInitramfs(const std::string& base_initramfs, const TaskSpec& spec,
                          const std::string& out_path) {
  NFC_ASSIGN_OR_RETURN(std::string archive, BuildTaskCpio(spec));
  UniqueFd base(::open(base_initramfs.c_str(), O_RDONLY | O_CLOEXEC));
  if (!base) return Error::Errno("open " + base_initramfs);
  std::string tmp = out_path + ".tmp" + std::to_string(getpid());
  UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!out) return Error::Errno("create " + tmp);
  auto fail = [&](Error e) {
    ::unlink(tmp.c_str());
    return e;
  };
  auto write_all = [&](const char* p, size_t n) -> Status {
    while (n > 0) {
      ssize_t w = ::write(out.get(), p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return Error::Errno("write " + tmp);
      p += w;
      n -= static_cast<size_t>(w);
    }
    return Ok();
  };
  uint64_t total = 0;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(base.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(Error::Errno("read " + base_initramfs));
    if (n == 0) break;
    if (auto s = write_all(buf, static_cast<size_t>(n)); !s.ok()) return fail(std::move(s).error());
    total += static_cast<uint64_t>(n);
  }
  static const char zeros[4] = {0, 0, 0, 0};
  if (auto s = write_all(zeros, (4 - total % 4) % 4); !s.ok()) return fail(std::move(s).error());
  if (auto s = write_all(archive.data(), archive.size()); !s.ok()) return fail(std::move(s).error());
  if (::fsync(out.get()) != 0) return fail(Error::Errno("fsync " + tmp));
  if (::rename(tmp.c_str(), out_path.c_str()) != 0)
    return fail(Error::Errno("rename " + tmp + " to " + out_path));
  return Ok();
}

Result<std::vector<CpioEntry>> ParseCpio(std::string_view a) {
  std::vector<CpioEntry> entries;
  size_t pos = 0;
  auto field = [&](size_t header, int index) -> Result<uint32_t> {
    std::string hex(a.substr(header + 6 + static_cast<size_t>(index) * 8, 8));
    char* end = nullptr;
    unsigned long v = std::strtoul(hex.c_str(), &end, 16);
    if (end != hex.c_str() + 8)
      return Error::DataLoss("cpio: bad header field at offset " + std::to_string(header));
    return static_cast<uint32_t>(v);
  };
  for (;;) {
    while (pos < a.size() && a[pos] == '\0') pos++;  // padding between concatenated archives
    if (pos == a.size()) break;
    if (a.size() - pos < 110 || a.substr(pos, 6) != "070701") {
      return Error::DataLoss("cpio: no newc header at offset " + std::to_string(pos));
    }
    NFC_ASSIGN_OR_RETURN(uint32_t mode, field(pos, 1));
    NFC_ASSIGN_OR_RETURN(uint32_t size, field(pos, 6));
    NFC_ASSIGN_OR_RETURN(uint32_t namesize, field(pos, 11));
    size_t name_at = pos + 110;
    if (namesize == 0 || name_at + namesize > a.size())
      return Error::DataLoss("cpio: truncated name at " + std::to_string(pos));
    std::string name(a.substr(name_at, namesize - 1));
    size_t data_at = (name_at + namesize + 3) & ~size_t{3};
    if (data_at + size > a.size()) return Error::DataLoss("cpio: truncated data of \"" + name + "\"");
    pos = (data_at + size + 3) & ~size_t{3};
    if (name == "TRAILER!!!") continue;
    entries.push_back({name, mode, std::string(a.substr(data_at, size))});
  }
  return entries;
}

}  // namespace nfc::guest
