#include "image/layer_scan.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/fs.h"
#include "image/sha256.h"

namespace nfc::image {
namespace {

constexpr uint64_t kSpoolAlign = 4096;    // file data starts on a block boundary: page-sized kernel copies
constexpr size_t kSpoolBuffer = 4 << 20;  // spool writes are coalesced into chunks this large

// The decompressed tar stream, counted and hashed: what the scan reports as the bytes it decompressed, and
// the digest an image config's rootfs.diff_ids holds for the layer.
class CountingSource : public ByteSource {
 public:
  explicit CountingSource(std::unique_ptr<ByteSource> inner) : inner_(std::move(inner)) {}
  Result<size_t> Read(char* buf, size_t n) override {
    NFC_ASSIGN_OR_RETURN(size_t got, inner_->Read(buf, n));
    produced_ += got;
    hash_.Update(buf, got);
    return got;
  }
  uint64_t Consumed() const override { return inner_->Consumed(); }
  uint64_t produced() const { return produced_; }
  std::string Digest() { return hash_.FinishDigest(); }

 private:
  std::unique_ptr<ByteSource> inner_;
  uint64_t produced_ = 0;
  Sha256 hash_;
};

// An unlinked file (O_TMPFILE where the filesystem has it, else a name removed at once).
Result<UniqueFd> OpenSpool(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (fd) return fd;
  if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) return Error::Errno("spool in " + dir);
  std::string path = dir + "/.spool-" + fs::TempName();
  fd = UniqueFd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return Error::Errno("create " + path);
  if (::unlink(path.c_str()) != 0) return Error::Errno("unlink " + path);
  return fd;
}

// Appends file data to the spool through one large buffer.
class SpoolWriter {
 public:
  SpoolWriter(int fd, std::string where) : fd_(fd), where_(std::move(where)) { buf_.reserve(kSpoolBuffer); }

  // Where the next file's data starts (block-aligned).
  uint64_t StartFile() {
    uint64_t pad = (kSpoolAlign - end_ % kSpoolAlign) % kSpoolAlign;
    buf_.append(pad, '\0');
    end_ += pad;
    return end_;
  }
  Status Append(const void* data, size_t len) {
    if (buf_.size() + len > kSpoolBuffer) NFC_RETURN_IF_ERROR(Flush());
    if (len >= kSpoolBuffer) return WriteAt(written_, static_cast<const char*>(data), len);
    buf_.append(static_cast<const char*>(data), len);
    end_ += len;
    return Ok();
  }
  Status Flush() {
    Status st = WriteAt(written_, buf_.data(), buf_.size());
    buf_.clear();
    return st;
  }

 private:
  // Writes len bytes at offset (== written_), advancing written_ (and end_ for direct writes).
  Status WriteAt(uint64_t offset, const char* p, size_t len) {
    const bool direct = p != buf_.data();
    for (size_t done = 0; done < len;) {
      ssize_t n = ::pwrite(fd_, p + done, len - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Error::Errno("write file data to the spool in " + where_);
      }
      done += static_cast<size_t>(n);
    }
    written_ += len;
    if (direct) end_ += len;
    return Ok();
  }

  int fd_;
  std::string where_;
  std::string buf_;
  uint64_t written_ = 0;  // bytes on the file
  uint64_t end_ = 0;      // bytes on the file plus buffered
};

}  // namespace

Result<LayerScan> ScanLayer(std::unique_ptr<ByteSource> blob, const std::string& name,
                            const std::string& spool_dir, std::atomic<uint64_t>* consumed,
                            const std::atomic<bool>* cancel) {
  ByteSource* raw = blob.get();
  NFC_ASSIGN_OR_RETURN(auto stream, OpenDecompressed(std::move(blob), "layer " + name));
  CountingSource tar(std::move(stream));
  auto reader = LayerReader::OverTar(&tar, name);
  LayerScan scan;
  NFC_ASSIGN_OR_RETURN(scan.spool, OpenSpool(spool_dir));
  SpoolWriter spool(scan.spool.get(), spool_dir);
  TarEntry e;
  for (uint64_t index = 0;; ++index) {
    if (cancel && cancel->load(std::memory_order_relaxed)) return Error(ErrorCode::kCancelled, "cancelled");
    NFC_ASSIGN_OR_RETURN(bool more, reader->Next(&e));
    if (!more) break;
    uint64_t at = kNoData;
    if (e.type == TarEntry::Type::kFile && e.size > 0) {
      at = spool.StartFile();
      uint64_t got = 0;
      NFC_RETURN_IF_ERROR_CTX(reader->ReadData([&](uint64_t, const void* data, size_t len) {
        got += len;
        return spool.Append(data, len);
      }),
                              "layer " + name + ": " + e.path);
      if (got != e.size) {
        return Error::DataLoss("layer " + name + ": " + e.path + ": " + std::to_string(got) +
                               " bytes of data, the header says " + std::to_string(e.size));
      }
    }
    scan.entries.push_back(std::move(e));
    scan.data_at.push_back(at);
    if (consumed) consumed->store(raw->Consumed(), std::memory_order_relaxed);
  }
  NFC_RETURN_IF_ERROR(spool.Flush());
  // The rest of the stream (the archive's end blocks, padding, further gzip members): read so the whole
  // stream is checked (a gzip trailer's CRC, a cut zstd frame) and the blob is consumed to its end.
  char sink[16384];
  while (true) {
    NFC_ASSIGN_OR_RETURN(size_t got, tar.Read(sink, sizeof sink));
    if (got == 0) break;
  }
  if (consumed) consumed->store(raw->Consumed(), std::memory_order_relaxed);
  scan.tar_bytes = tar.produced();
  scan.tar_digest = tar.Digest();
  return scan;
}

}  // namespace nfc::image
