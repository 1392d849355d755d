#include "image/layer_reader.h"

namespace nfc::image {
namespace {

constexpr std::string_view kXattrRecord = "SCHILY.xattr.";

TarEntry::Type TypeOf(char typeflag) {
  switch (typeflag) {
    case '0':
    case 'S':  // old GNU sparse: a regular file whose holes are not stored
      return TarEntry::Type::kFile;
    case '1':
      return TarEntry::Type::kHardlink;
    case '2':
      return TarEntry::Type::kSymlink;
    case '3':
      return TarEntry::Type::kChar;
    case '4':
      return TarEntry::Type::kBlock;
    case '5':
      return TarEntry::Type::kDir;
    case '6':
      return TarEntry::Type::kFifo;
    case 'g':
      return TarEntry::Type::kGlobalHeader;
    default:
      return TarEntry::Type::kOther;
  }
}

}  // namespace

Result<std::unique_ptr<LayerReader>> LayerReader::Wrap(std::unique_ptr<ByteSource> blob, std::string name) {
  NFC_ASSIGN_OR_RETURN(auto stream, OpenDecompressed(std::move(blob), "layer " + name));
  ByteSource* src = stream.get();
  return std::unique_ptr<LayerReader>(new LayerReader(std::move(stream), src, std::move(name)));
}

std::unique_ptr<LayerReader> LayerReader::OverTar(ByteSource* tar, std::string name) {
  return std::unique_ptr<LayerReader>(new LayerReader(nullptr, tar, std::move(name)));
}

Result<std::unique_ptr<LayerReader>> LayerReader::Open(const std::string& path, std::string name) {
  NFC_ASSIGN_OR_RETURN(auto blob, OpenFileSource(path));
  return Wrap(std::move(blob), std::move(name));
}

Result<std::unique_ptr<LayerReader>> LayerReader::OpenMemory(std::string_view data, std::string name) {
  return Wrap(OpenMemorySource(data), std::move(name));
}

Result<bool> LayerReader::Next(TarEntry* e) {
  tar::Header h;
  auto more = tar_.Next(&h);
  if (!more.ok()) return std::move(more).error().Context("layer " + name_ + ": read entry header");
  if (!*more) return false;
  *e = TarEntry{};
  e->type = TypeOf(h.typeflag);
  e->typeflag = h.typeflag;
  e->path = std::move(h.name);
  e->link_target = std::move(h.linkname);
  e->mode = static_cast<uint32_t>(h.mode) & 07777;
  e->uid = h.uid;
  e->gid = h.gid;
  e->mtime = h.mtime;
  e->mtime_nsec = static_cast<uint32_t>(h.mtime_nsec);
  e->size = h.size > 0 ? static_cast<uint64_t>(h.size) : 0;
  e->dev_major = h.devmajor;
  e->dev_minor = h.devminor;
  for (auto it = h.pax.lower_bound(std::string(kXattrRecord));
       it != h.pax.end() && std::string_view(it->first).starts_with(kXattrRecord); ++it) {
    e->xattrs.emplace_back(it->first.substr(kXattrRecord.size()), it->second);
  }
  return true;
}

Status LayerReader::ReadData(const std::function<Status(uint64_t, const void*, size_t)>& fn) {
  Status st =
      tar_.ReadData([&](uint64_t offset, const char* data, size_t len) { return fn(offset, data, len); });
  if (!st.ok()) return std::move(st).error().Context("layer " + name_ + ": read entry data");
  return Ok();
}

}  // namespace nfc::image
