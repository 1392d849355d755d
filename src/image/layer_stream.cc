#include "image/layer_stream.h"

#include <fcntl.h>
#include <isa-l/igzip_lib.h>
#include <unistd.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "base/unique_fd.h"

namespace nfc::image {
namespace {

constexpr size_t kInputBuffer = 256 << 10;

class FileSource : public ByteSource {
 public:
  FileSource(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  Result<size_t> Read(char* buf, size_t n) override {
    while (true) {
      ssize_t got = ::read(fd_.get(), buf, n);
      if (got >= 0) {
        consumed_ += static_cast<uint64_t>(got);
        return static_cast<size_t>(got);
      }
      if (errno != EINTR) return Error::Errno("read " + path_);
    }
  }
  uint64_t Consumed() const override { return consumed_; }

 private:
  UniqueFd fd_;
  std::string path_;
  uint64_t consumed_ = 0;
};

class MemorySource : public ByteSource {
 public:
  explicit MemorySource(std::string_view data) : data_(data) {}
  Result<size_t> Read(char* buf, size_t n) override {
    size_t len = std::min(n, data_.size() - pos_);
    if (len > 0) std::memcpy(buf, data_.data() + pos_, len);
    pos_ += len;
    return len;
  }
  uint64_t Consumed() const override { return pos_; }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

// The compressed input of a decompressor: bytes read ahead from the blob, starting with those read to detect
// the format.
class Input {
 public:
  Input(std::unique_ptr<ByteSource> src, std::string prefix) : src_(std::move(src)), buf_(kInputBuffer) {
    std::memcpy(buf_.data(), prefix.data(), prefix.size());
    end_ = prefix.size();
  }
  const char* data() const { return buf_.data() + start_; }
  size_t size() const { return end_ - start_; }
  void Consume(size_t n) { start_ += n; }
  bool eof() const { return eof_ && size() == 0; }
  // Reads more of the blob (keeping unconsumed bytes) until at least `want` bytes are buffered or it ends.
  Status Fill(size_t want = 1) {
    if (start_ > 0) {
      std::memmove(buf_.data(), buf_.data() + start_, size());
      end_ -= start_;
      start_ = 0;
    }
    while (end_ < want && !eof_) {
      NFC_ASSIGN_OR_RETURN(size_t got, src_->Read(buf_.data() + end_, buf_.size() - end_));
      if (got == 0) eof_ = true;
      end_ += got;
    }
    return Ok();
  }
  uint64_t Consumed() const { return src_->Consumed(); }

 private:
  std::unique_ptr<ByteSource> src_;
  std::vector<char> buf_;
  size_t start_ = 0, end_ = 0;
  bool eof_ = false;
};

class PassThrough : public ByteSource {
 public:
  explicit PassThrough(Input in) : in_(std::move(in)) {}
  Result<size_t> Read(char* buf, size_t n) override {
    if (in_.size() == 0) NFC_RETURN_IF_ERROR(in_.Fill());
    size_t len = std::min(n, in_.size());
    std::memcpy(buf, in_.data(), len);
    in_.Consume(len);
    return len;
  }
  uint64_t Consumed() const override { return in_.Consumed(); }

 private:
  Input in_;
};

// gzip through Intel's ISA-L inflate (igzip): the same format as zlib's, 3-4x the speed on x86 (on our
// machines `igzip -dc` takes 0.27 s for a 100 MB layer where `gzip -dc` takes 1.1 s), and decompression
// is most of a conversion.
// The header (with its CRC when flagged) and each member's CRC-32 and length are checked by ISA-L.
class GzipSource : public ByteSource {
 public:
  GzipSource(Input in, std::string what)
      : in_(std::move(in)), what_(std::move(what)), state_(std::make_unique<inflate_state>()) {}
  Status Init() {
    isal_inflate_init(state_.get());
    state_->crc_flag = ISAL_GZIP;
    return Ok();
  }
  Result<size_t> Read(char* buf, size_t n) override {
    size_t produced = 0;
    while (n > 0 && produced == 0 && !finished_) {
      NFC_ASSIGN_OR_RETURN(produced, Step(buf, n));
    }
    return produced;
  }
  uint64_t Consumed() const override { return in_.Consumed(); }

 private:
  static std::string Describe(int rc) {
    switch (rc) {
      case ISAL_INVALID_BLOCK:
        return "invalid deflate block";
      case ISAL_INVALID_SYMBOL:
        return "invalid deflate symbol";
      case ISAL_INVALID_LOOKBACK:
        return "invalid distance too far back";
      case ISAL_INVALID_WRAPPER:
        return "invalid header";
      case ISAL_UNSUPPORTED_METHOD:
        return "unsupported compression method";
      case ISAL_INCORRECT_CHECKSUM:
        return "checksum or length mismatch";
      default:
        return "inflate error " + std::to_string(rc);
    }
  }

  // One inflate call (or the switch to the next member); returns the bytes it produced.
  Result<size_t> Step(char* buf, size_t n) {
    if (member_done_) {
      // Like Go's multistream gzip reader: after a member, either the stream ends or another member starts.
      NFC_RETURN_IF_ERROR(in_.Fill(2));
      if (in_.size() == 0) {
        finished_ = true;
        return 0;
      }
      if (in_.size() < 2 || static_cast<unsigned char>(in_.data()[0]) != 0x1f ||
          static_cast<unsigned char>(in_.data()[1]) != 0x8b) {
        return Error::DataLoss(what_ + ": gzip: invalid header after the end of a member");
      }
      isal_inflate_reset(state_.get());
      state_->crc_flag = ISAL_GZIP;
      member_done_ = false;
    }
    if (in_.size() == 0) {
      NFC_RETURN_IF_ERROR(in_.Fill());
      if (in_.size() == 0) return Error::DataLoss(what_ + ": gzip stream ends early (unexpected EOF)");
    }
    inflate_state* z = state_.get();
    z->next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(in_.data()));
    z->avail_in = static_cast<uint32_t>(std::min<size_t>(in_.size(), UINT32_MAX));
    z->next_out = reinterpret_cast<uint8_t*>(buf);
    z->avail_out = static_cast<uint32_t>(std::min<size_t>(n, UINT32_MAX));
    const uint32_t in_before = z->avail_in, out_before = z->avail_out;
    int rc = isal_inflate(z);
    in_.Consume(in_before - z->avail_in);
    if (rc < 0) return Error::DataLoss(what_ + ": gzip: " + Describe(rc));
    if (z->block_state == ISAL_BLOCK_FINISH) member_done_ = true;
    return static_cast<size_t>(out_before - z->avail_out);
  }

  Input in_;
  std::string what_;
  std::unique_ptr<inflate_state> state_;  // large (about 20 KiB of tables and windows)
  bool member_done_ = false, finished_ = false;
};

class ZstdSource : public ByteSource {
 public:
  ZstdSource(Input in, std::string what) : in_(std::move(in)), what_(std::move(what)) {}
  ~ZstdSource() override { ZSTD_freeDStream(ds_); }
  Status Init() {
    ds_ = ZSTD_createDStream();
    if (!ds_) return Error::Internal("ZSTD_createDStream failed");
    return Ok();
  }
  Result<size_t> Read(char* buf, size_t n) override {
    ZSTD_outBuffer out{buf, n, 0};
    while (n > 0 && out.pos == 0 && !finished_) {
      if (in_.size() == 0) NFC_RETURN_IF_ERROR(in_.Fill());
      const bool at_end = in_.eof();
      if (at_end && frame_complete_) {
        finished_ = true;
        break;
      }
      ZSTD_inBuffer in{in_.data(), in_.size(), 0};
      size_t r = ZSTD_decompressStream(ds_, &out, &in);
      if (ZSTD_isError(r)) return Error::DataLoss(what_ + ": zstd: " + ZSTD_getErrorName(r));
      in_.Consume(in.pos);
      frame_complete_ = r == 0;  // 0: the frame is finished and everything it holds was returned
      if (at_end && out.pos == 0) {
        if (!frame_complete_) return Error::DataLoss(what_ + ": zstd stream ends early (unexpected EOF)");
        finished_ = true;
      }
    }
    return out.pos;
  }
  uint64_t Consumed() const override { return in_.Consumed(); }

 private:
  Input in_;
  std::string what_;
  ZSTD_DStream* ds_ = nullptr;
  bool frame_complete_ = false, finished_ = false;
};

}  // namespace

Result<std::unique_ptr<ByteSource>> OpenFileSource(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Error::Errno("open " + path);
  return std::unique_ptr<ByteSource>(new FileSource(std::move(fd), path));
}

std::unique_ptr<ByteSource> OpenMemorySource(std::string_view data) {
  return std::make_unique<MemorySource>(data);
}

Result<std::unique_ptr<ByteSource>> OpenDecompressed(std::unique_ptr<ByteSource> blob, std::string what) {
  std::string magic(4, '\0');
  size_t have = 0;
  while (have < magic.size()) {
    NFC_ASSIGN_OR_RETURN(size_t got, blob->Read(magic.data() + have, magic.size() - have));
    if (got == 0) break;
    have += got;
  }
  magic.resize(have);
  const bool gzip = magic.size() >= 2 && magic.compare(0, 2, "\x1f\x8b") == 0;
  const bool zstd = magic == std::string_view("\x28\xb5\x2f\xfd", 4);
  Input in(std::move(blob), magic);
  if (gzip) {
    auto s = std::make_unique<GzipSource>(std::move(in), std::move(what));
    NFC_RETURN_IF_ERROR(s->Init());
    return std::unique_ptr<ByteSource>(std::move(s));
  }
  if (zstd) {
    auto s = std::make_unique<ZstdSource>(std::move(in), std::move(what));
    NFC_RETURN_IF_ERROR(s->Init());
    return std::unique_ptr<ByteSource>(std::move(s));
  }
  return std::unique_ptr<ByteSource>(new PassThrough(std::move(in)));
}

}  // namespace nfc::image
