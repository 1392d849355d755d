// Layer blobs (tar, tar+gzip, tar+zstd; untrusted: any registry or image author writes them) through the
// whole conversion: LayerStream's decompression, TarReader, LayerTree and the ext4 writer, into an ext4 image
// that is then read back with libext2fs.
//
// An input is one to four layers separated by "\n=LAYER=\n" (bottom first). Each is decompressed here first,
// within a budget, so a decompression bomb costs one check instead of a timeout; the conversion then gets the
// tar bytes. mke2fs runs once (LLVMFuzzerInitialize) to make a template image on /dev/shm, whose non-zero
// extents are copied into a fresh file for every input; trees too big for it are refused by the writer
// factory, as a full disk would refuse them.
//
// Properties: the conversion either fails with an error or yields an image libext2fs opens, whose directory
// tree holds exactly as many names as the layer tree had (TreeStats: inodes - 1 + hard links) and at least as
// many inodes in use.
#include <ext2fs/ext2fs.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "image/ext4_writer.h"
#include "image/layer_stream.h"
#include "image/rootfs_builder.h"

namespace {

constexpr std::string_view kSeparator = "\n=LAYER=\n";
constexpr size_t kMaxLayers = 4;
constexpr size_t kMaxTarBytes = 8 << 20;     // per layer, after decompression
constexpr uint64_t kTemplateBlocks = 16384;  // 64 MiB, sparse
constexpr uint64_t kTemplateInodes = 4096;

struct Extent {
  off_t offset;
  std::string data;
};

struct Fixture {
  std::string dir, image;
  off_t size = 0;
  std::vector<Extent> extents;  // the template's non-zero parts
  uint64_t free_blocks = 0;
};

Fixture* fixture = nullptr;

void RemoveFixture() {
  if (!fixture) return;
  ::unlink(fixture->image.c_str());
  ::rmdir(fixture->dir.c_str());
}

// Formats the template once and remembers its data extents (mke2fs leaves the rest of the file a hole).
void MakeTemplate() {
  fixture = new Fixture;
  std::string base =
      ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
  std::string tmpl = base + "/nfc-layer-tar-fuzz.XXXXXX";
  NFC_FUZZ_CHECK(::mkdtemp(tmpl.data()) != nullptr);
  fixture->dir = tmpl;
  fixture->image = fixture->dir + "/image.ext4";
  std::atexit(RemoveFixture);
  nfc::image::Ext4Geometry g;
  g.blocks = kTemplateBlocks;
  g.inodes = kTemplateInodes;
  auto w = nfc::image::Ext4Writer::Create(fixture->image, g, "fuzz");  // an empty image, lost+found removed
  NFC_FUZZ_CHECK(w.ok());
  NFC_FUZZ_CHECK((*w)->Finish().ok());
  w->reset();
  int fd = ::open(fixture->image.c_str(), O_RDONLY | O_CLOEXEC);
  NFC_FUZZ_CHECK(fd >= 0);
  fixture->size = ::lseek(fd, 0, SEEK_END);
  for (off_t pos = 0; (pos = ::lseek(fd, pos, SEEK_DATA)) >= 0;) {
    off_t end = ::lseek(fd, pos, SEEK_HOLE);
    Extent e{pos, std::string(static_cast<size_t>(end - pos), '\0')};
    NFC_FUZZ_CHECK(::pread(fd, e.data.data(), e.data.size(), pos) == static_cast<ssize_t>(e.data.size()));
    fixture->extents.push_back(std::move(e));
    pos = end;
  }
  ::close(fd);
  ext2_filsys fs = nullptr;
  NFC_FUZZ_CHECK(
      ext2fs_open2(fixture->image.c_str(), nullptr, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs) == 0);
  fixture->free_blocks = ext2fs_free_blocks_count(fs->super);
  ext2fs_close_free(&fs);
}

void RestoreTemplate() {
  int fd = ::open(fixture->image.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  NFC_FUZZ_CHECK(fd >= 0);
  NFC_FUZZ_CHECK(::ftruncate(fd, fixture->size) == 0);
  for (const auto& e : fixture->extents) {
    NFC_FUZZ_CHECK(::pwrite(fd, e.data.data(), e.data.size(), e.offset) ==
                   static_cast<ssize_t>(e.data.size()));
  }
  ::close(fd);
}

// The layer's tar stream, or nothing when it is over budget, or itself compressed again (the production path
// decompresses once; feeding decompressed bytes back would decompress a second time).
bool Decompress(std::string_view blob, std::string* tar) {
  auto stream = nfc::image::OpenDecompressed(nfc::image::OpenMemorySource(blob), "fuzz layer");
  if (!stream.ok()) return false;
  char buf[64 << 10];
  while (true) {
    auto n = (*stream)->Read(buf, sizeof buf);
    if (!n.ok()) return false;
    if (*n == 0) break;
    if (tar->size() + *n > kMaxTarBytes) return false;
    tar->append(buf, *n);
  }
  const bool compressed = (tar->size() >= 2 && tar->compare(0, 2, "\x1f\x8b") == 0) ||
                          (tar->size() >= 4 && tar->compare(0, 4, "\x28\xb5\x2f\xfd") == 0);
  return !compressed;
}

// Every name below the root, counted; and each regular file's size checked against the inode count.
uint64_t CountNames(ext2_filsys fs, ext2_ino_t dir, int depth) {
  NFC_FUZZ_CHECK(depth < 4096);
  struct Ent {
    ext2_ino_t ino;
    int type;
  };
  std::vector<Ent> ents;
  auto cb = [](ext2_dir_entry* d, int, int, char*, void* priv) -> int {
    std::string_view name(d->name, ext2fs_dirent_name_len(d));
    if (name != "." && name != "..")
      static_cast<std::vector<Ent>*>(priv)->push_back({d->inode, ext2fs_dirent_file_type(d)});
    return 0;
  };
  NFC_FUZZ_CHECK(ext2fs_dir_iterate(fs, dir, 0, nullptr, cb, &ents) == 0);
  uint64_t n = ents.size();
  for (const auto& e : ents) {
    if (e.type == EXT2_FT_DIR) n += CountNames(fs, e.ino, depth + 1);
  }
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  MakeTemplate();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input = nfc::fuzz::AsText(data, size);
  std::vector<std::string> tars;
  while (tars.size() < kMaxLayers) {
    size_t cut = tars.size() + 1 < kMaxLayers ? input.find(kSeparator) : std::string_view::npos;
    std::string tar;
    if (!Decompress(input.substr(0, cut), &tar)) return 0;
    tars.push_back(std::move(tar));
    if (cut == std::string_view::npos) break;
    input.remove_prefix(cut + kSeparator.size());
  }
  std::vector<nfc::image::LayerInput> layers;
  for (size_t i = 0; i < tars.size(); ++i) {
    nfc::image::LayerFile l;
    l.name = "layer" + std::to_string(i);
    l.bytes = tars[i];
    layers.push_back(nfc::image::ToLayerInput(l));
  }
  auto make_writer =
      [](const nfc::image::Ext4Geometry& g) -> nfc::Result<std::unique_ptr<nfc::image::Ext4Writer>> {
    if (g.inodes > kTemplateInodes || g.data_blocks + g.data_blocks / 20 + 64 > fixture->free_blocks) {
      return nfc::Error::InvalidArgument("tree too big for the fuzz image");
    }
    RestoreTemplate();
    return nfc::image::Ext4Writer::OpenFormatted(fixture->image);
  };
  nfc::image::BuildOptions options;
  options.spool_dir = fixture->dir;
  options.parallelism = 1;  // one input at a time, no threads: libFuzzer's -jobs parallelizes
  auto stats = nfc::image::BuildRootfsWith(layers, make_writer, options);
  if (std::getenv("NFC_FUZZ_VERBOSE")) {  // running seeds by hand: what became of each
    std::fprintf(stderr, "layer_tar: %zu layer(s): %s\n", layers.size(),
                 stats.ok() ? ("ok, " + std::to_string(stats->tree.inodes) + " inodes").c_str()
                            : stats.error().message().c_str());
  }
  if (!stats.ok()) return 0;
  ext2_filsys fs = nullptr;
  NFC_FUZZ_CHECK(
      ext2fs_open2(fixture->image.c_str(), nullptr, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs) == 0);
  NFC_FUZZ_CHECK(ext2fs_read_bitmaps(fs) == 0);
  const uint64_t names = CountNames(fs, EXT2_ROOT_INO, 0);
  NFC_FUZZ_CHECK(names == stats->tree.inodes - 1 + stats->tree.hardlinks);
  NFC_FUZZ_CHECK(fs->super->s_inodes_count - fs->super->s_free_inodes_count >= stats->tree.inodes);
  ext2fs_close_free(&fs);
  return 0;
}
