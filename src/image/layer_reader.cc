#include "image/layer_reader.h"

#include <archive_entry.h>
#include <fcntl.h>

namespace nfc::image {

Result<std::unique_ptr<LayerReader>> LayerReader::Open(const std::string& path, std::string name) {
  struct archive* a = archive_read_new();
  if (!a) return Error::Internal("archive_read_new failed");
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_zstd(a);
  archive_read_support_format_tar(a);
  archive_read_support_format_gnutar(a);
  std::unique_ptr<LayerReader> r(new LayerReader(a, std::move(name)));
  if (archive_read_open_filename(a, path.c_str(), 1 << 20) != ARCHIVE_OK) {
    return r->ArchiveError("open " + path);
  }
  return r;
}

LayerReader::~LayerReader() {
  archive_read_free(a_);
}

Error LayerReader::ArchiveError(const std::string& what) const {
  const char* msg = archive_error_string(a_);
  return Error::DataLoss("layer " + name_ + ": " + what + ": " + (msg ? msg : "unknown libarchive error"));
}

uint64_t LayerReader::BytesConsumed() const {
  return static_cast<uint64_t>(archive_filter_bytes(a_, -1));
}

Result<bool> LayerReader::Next(TarEntry* e) {
  struct archive_entry* ae = nullptr;
  int rc = archive_read_next_header(a_, &ae);
  if (rc == ARCHIVE_EOF) return false;
  if (rc == ARCHIVE_WARN) {
    // Warnings are about charset conversion of names or unknown pax keys; the entry itself is usable.
  } else if (rc != ARCHIVE_OK) {
    return ArchiveError("read entry header");
  }
  *e = TarEntry{};
  const char* p = archive_entry_pathname(ae);
  e->path = p ? p : "";
  e->mode = archive_entry_perm(ae) & 07777;
  e->uid = static_cast<uint32_t>(archive_entry_uid(ae));
  e->gid = static_cast<uint32_t>(archive_entry_gid(ae));
  e->mtime = archive_entry_mtime(ae);
  e->mtime_nsec = archive_entry_mtime_is_set(ae) ? static_cast<uint32_t>(archive_entry_mtime_nsec(ae)) : 0;
  e->size = archive_entry_size_is_set(ae) ? static_cast<uint64_t>(archive_entry_size(ae)) : 0;
  if (const char* hl = archive_entry_hardlink(ae)) {
    e->type = TarEntry::Type::kHardlink;
    e->link_target = hl;
  } else {
    switch (archive_entry_filetype(ae)) {
      case AE_IFREG:
        e->type = TarEntry::Type::kFile;
        break;
      case AE_IFDIR:
        e->type = TarEntry::Type::kDir;
        break;
      case AE_IFLNK:
        e->type = TarEntry::Type::kSymlink;
        e->link_target = archive_entry_symlink(ae) ? archive_entry_symlink(ae) : "";
        break;
      case AE_IFCHR:
        e->type = TarEntry::Type::kChar;
        break;
      case AE_IFBLK:
        e->type = TarEntry::Type::kBlock;
        break;
      case AE_IFIFO:
        e->type = TarEntry::Type::kFifo;
        break;
      default:
        e->type = TarEntry::Type::kOther;
        break;
    }
  }
  if (e->type == TarEntry::Type::kChar || e->type == TarEntry::Type::kBlock) {
    e->dev_major = archive_entry_rdevmajor(ae);
    e->dev_minor = archive_entry_rdevminor(ae);
  }
  archive_entry_xattr_reset(ae);
  const char* name = nullptr;
  const void* value = nullptr;
  size_t len = 0;
  while (archive_entry_xattr_next(ae, &name, &value, &len) == ARCHIVE_OK) {
    e->xattrs.emplace_back(name, std::string(static_cast<const char*>(value), len));
  }
  return true;
}

Status LayerReader::ReadData(const std::function<Status(uint64_t, const void*, size_t)>& fn) {
  while (true) {
    const void* buf = nullptr;
    size_t len = 0;
    la_int64_t offset = 0;
    int rc = archive_read_data_block(a_, &buf, &len, &offset);
    if (rc == ARCHIVE_EOF) return Ok();
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return ArchiveError("read entry data");
    if (len) NFC_RETURN_IF_ERROR(fn(static_cast<uint64_t>(offset), buf, len));
  }
}

}  // namespace nfc::image
