#include "image/tar_reader.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace nfc::image {
namespace {

constexpr size_t kChunk = 256 << 10;
constexpr size_t kReadAhead = 64 << 10;
constexpr char kZeros[64 << 10] = {};

bool IsHeaderOnly(char t) {
  return t == '1' || t == '2' || t == '3' || t == '4' || t == '5' || t == '6';
}

bool AllZero(std::string_view b) {
  return b.find_first_not_of('\0') == std::string_view::npos;
}

std::string At(uint64_t offset) {
  return " at offset " + std::to_string(offset);
}

}  // namespace

Error TarReader::Fail(Error e) {
  error_ = e;
  return e;
}

Result<bool> TarReader::Next(tar::Header* h) {
  if (error_) return *error_;
  if (at_end_) return false;
  auto more = NextHeader(h);
  if (!more.ok()) return Fail(more.error());
  if (!*more) at_end_ = true;
  return more;
}

// Headers are read 512 bytes at a time: through a read-ahead buffer, so a decompressor is not called for
// each (libarchive does the same); reads of at least its size go straight to the caller's buffer.
Result<size_t> TarReader::ReadFull(char* buf, size_t n) {
  size_t have = 0;
  while (have < n) {
    if (ahead_pos_ == ahead_len_) {
      if (n - have >= kReadAhead) {
        NFC_ASSIGN_OR_RETURN(size_t got, src_->Read(buf + have, n - have));
        if (got == 0) break;
        have += got;
        offset_ += got;
        continue;
      }
      if (ahead_.size() < kReadAhead) ahead_.resize(kReadAhead);
      NFC_ASSIGN_OR_RETURN(size_t got, src_->Read(ahead_.data(), ahead_.size()));
      if (got == 0) break;
      ahead_pos_ = 0;
      ahead_len_ = got;
    }
    size_t take = std::min(n - have, ahead_len_ - ahead_pos_);
    std::memcpy(buf + have, ahead_.data() + ahead_pos_, take);
    ahead_pos_ += take;
    have += take;
    offset_ += take;
  }
  return have;
}

Status TarReader::ReadExactly(char* buf, size_t n, const char* what) {
  NFC_ASSIGN_OR_RETURN(size_t got, ReadFull(buf, n));
  if (got < n) return Error::DataLoss(std::string("tar: unexpected EOF in ") + what + At(offset_));
  return Ok();
}

Status TarReader::Skip(uint64_t n) {
  if (buf_.size() < kChunk) buf_.resize(kChunk);
  while (n > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(n, buf_.size()));
    NFC_RETURN_IF_ERROR(ReadExactly(buf_.data(), want, "the data of the entry"));
    n -= want;
  }
  return Ok();
}

Result<bool> TarReader::ReadHeaderBlock(std::string* block) {
  block->resize(tar::kBlockSize);
  NFC_ASSIGN_OR_RETURN(size_t got, ReadFull(block->data(), tar::kBlockSize));
  if (got == 0) return false;
  if (got < tar::kBlockSize) return Error::DataLoss("tar: unexpected EOF inside a header" + At(offset_));
  if (!AllZero(*block)) return true;
  // The archive ends with two zero blocks; one, or the end of the stream after one, is fine too.
  NFC_ASSIGN_OR_RETURN(got, ReadFull(block->data(), tar::kBlockSize));
  if (got == 0) return false;
  if (got < tar::kBlockSize) return Error::DataLoss("tar: unexpected EOF after a zero block" + At(offset_));
  if (AllZero(*block)) return false;
  return Error::InvalidArgument("tar: a zero block followed by a header" + At(offset_ - tar::kBlockSize));
}

Status TarReader::SetDataSize(const tar::Header& h) {
  int64_t n = IsHeaderOnly(h.typeflag) ? 0 : h.size;
  if (n < 0) return Error::InvalidArgument("tar: negative entry size" + At(entry_offset_));
  remaining_ = static_cast<uint64_t>(n);
  pad_ = (tar::kBlockSize - remaining_ % tar::kBlockSize) % tar::kBlockSize;
  return Ok();
}

Result<std::string> TarReader::ReadSpecialFile(const char* what) {
  if (remaining_ > tar::kMaxSpecialFileSize) {
    return Error::InvalidArgument(std::string("tar: ") + what + " longer than 1 MiB" + At(entry_offset_));
  }
  std::string data(static_cast<size_t>(remaining_), '\0');
  NFC_RETURN_IF_ERROR(ReadExactly(data.data(), data.size(), what));
  remaining_ = 0;
  return data;
}

Result<bool> TarReader::NextHeader(tar::Header* h) {
  std::optional<std::map<std::string, std::string>> pax;
  std::string long_name, long_link, block;
  bool first = true;
  while (true) {
    // Whatever the caller did not read of the previous entry, then its padding. Go stops quietly when the
    // padding is missing: the data is complete, only the archive's formal end is absent.
    NFC_RETURN_IF_ERROR(Skip(remaining_));
    remaining_ = 0;
    sparse_ = false;
    holes_.clear();
    data_read_ = false;
    if (pad_ > 0) {
      char pad[tar::kBlockSize];
      const size_t want = pad_;
      pad_ = 0;
      NFC_ASSIGN_OR_RETURN(size_t got, ReadFull(pad, want));
      if (got < want) return false;
    }
    if (first) entry_offset_ = offset_;
    first = false;
    NFC_ASSIGN_OR_RETURN(bool more, ReadHeaderBlock(&block));
    if (!more) return false;
    tar::Header hdr;
    NFC_RETURN_IF_ERROR_CTX(tar::ParseHeaderBlock(block, &hdr), "header" + At(offset_ - tar::kBlockSize));
    NFC_RETURN_IF_ERROR(SetDataSize(hdr));
    if (hdr.typeflag == 'x' || hdr.typeflag == 'g') {
      NFC_ASSIGN_OR_RETURN(std::string data, ReadSpecialFile("pax header"));
      NFC_ASSIGN_OR_RETURN(auto records, tar::ParsePaxRecords(data));
      if (hdr.typeflag == 'x') {
        pax = std::move(records);  // for the next header; a second 'x' replaces the first
        continue;
      }
      tar::Header global;
      global.typeflag = 'g';
      global.name = hdr.name;
      if (auto p = records.find("path"); p != records.end() && !p->second.empty()) global.name = p->second;
      global.pax = std::move(records);
      *h = std::move(global);
      return true;
    }
    if (hdr.typeflag == 'L' || hdr.typeflag == 'K') {
      NFC_ASSIGN_OR_RETURN(std::string data, ReadSpecialFile("GNU long name"));
      (hdr.typeflag == 'L' ? long_name : long_link) = tar::CString(data);
      continue;
    }
    if (pax) NFC_RETURN_IF_ERROR_CTX(tar::MergePax(*pax, &hdr), "entry" + At(entry_offset_));
    if (!long_name.empty()) hdr.name = long_name;
    if (!long_link.empty()) hdr.linkname = long_link;
    if (hdr.typeflag == '\0') hdr.typeflag = !hdr.name.empty() && hdr.name.back() == '/' ? '5' : '0';
    NFC_RETURN_IF_ERROR(SetDataSize(hdr));  // pax may have changed the size
    NFC_RETURN_IF_ERROR_CTX(SetUpSparse(&hdr, &block), "entry \"" + hdr.name + "\"" + At(entry_offset_));
    *h = std::move(hdr);
    return true;
  }
}

Status TarReader::SetUpSparse(tar::Header* h, std::string* block) {
  std::optional<std::vector<Span>> map;
  if (h->typeflag == 'S') {
    NFC_ASSIGN_OR_RETURN(map, ReadOldGnuSparseMap(h, block));
  } else {
    NFC_ASSIGN_OR_RETURN(map, ReadPaxSparseMap(h));
  }
  if (!map) return Ok();
  // Go's validateSparseEntries: in order, not overlapping, inside the file.
  const Error bad = Error::InvalidArgument("tar: invalid sparse map");
  if (IsHeaderOnly(h->typeflag) || h->size < 0) return bad;
  int64_t prev_end = 0;
  for (const Span& s : *map) {
    if (s.offset < 0 || s.length < 0 || s.offset > std::numeric_limits<int64_t>::max() - s.length) return bad;
    if (s.offset + s.length > h->size || prev_end > s.offset) return bad;
    prev_end = s.offset + s.length;
  }
  // The holes between the data fragments (Go's invertSparseEntries), ending with the last, maybe empty, one.
  Span pre{0, 0};
  int64_t hole_bytes = 0;
  for (const Span& s : *map) {
    if (s.length == 0) continue;
    pre.length = s.offset - pre.offset;
    if (pre.length > 0) {
      holes_.push_back(pre);
      hole_bytes += pre.length;
    }
    pre.offset = s.offset + s.length;
  }
  pre.length = h->size - pre.offset;
  hole_bytes += pre.length;
  holes_.push_back(pre);
  sparse_ = true;
  // Go notices a map that disagrees with the stored data only while reading the data (errMissData,
  // errUnrefData); we check at once, so the first pass over a layer (headers only) refuses it too.
  if (static_cast<uint64_t>(h->size - hole_bytes) != remaining_) {
    return Error::InvalidArgument("tar: sparse map describes " + std::to_string(h->size - hole_bytes) +
                                  " bytes of data but " + std::to_string(remaining_) + " are stored");
  }
  return Ok();
}

Result<std::optional<std::vector<TarReader::Span>>> TarReader::ReadOldGnuSparseMap(tar::Header* h,
                                                                                   std::string* block) {
  if (tar::FormatOf(*block) != tar::Format::kGnu) {
    return Error::InvalidArgument("tar: sparse entry 'S' in a non-GNU header");
  }
  auto real_size = tar::ParseNumeric(std::string_view(*block).substr(483, 12));
  if (!real_size) return Error::InvalidArgument("tar: bad GNU sparse real size");
  h->size = *real_size;
  std::vector<Span> map;
  std::string_view area = std::string_view(*block).substr(386, 4 * 24 + 1);
  size_t entries = 4;
  while (true) {
    for (size_t i = 0; i < entries; ++i) {
      std::string_view elem = area.substr(i * 24, 24);
      if (elem[0] == '\0') break;
      auto off = tar::ParseNumeric(elem.substr(0, 12)), len = tar::ParseNumeric(elem.substr(12, 12));
      if (!off || !len) return Error::InvalidArgument("tar: bad GNU sparse map entry");
      map.push_back({*off, *len});
    }
    if (area[entries * 24] == '\0') return std::optional<std::vector<Span>>(std::move(map));
    // More entries follow in extension blocks between the header and the data.
    NFC_RETURN_IF_ERROR(ReadExactly(block->data(), tar::kBlockSize, "a GNU sparse extension header"));
    area = std::string_view(*block).substr(0, 21 * 24 + 1);
    entries = 21;
  }
}

Result<std::optional<std::vector<TarReader::Span>>> TarReader::ReadPaxSparseMap(tar::Header* h) {
  auto get = [&](const char* key) {
    auto it = h->pax.find(key);
    return it == h->pax.end() ? std::string() : it->second;
  };
  const std::string major = get("GNU.sparse.major"), minor = get("GNU.sparse.minor");
  bool v1 = false;
  if (major == "0" && (minor == "0" || minor == "1")) {
    v1 = false;
  } else if (major == "1" && minor == "0") {
    v1 = true;
  } else if (!major.empty() || !minor.empty() || get("GNU.sparse.map").empty()) {
    return std::optional<std::vector<Span>>();  // not sparse, or a GNU sparse version Go does not know (then:
                                                // a plain file)
  }
  const Error bad = Error::InvalidArgument("tar: invalid GNU sparse pax records");
  if (std::string name = get("GNU.sparse.name"); !name.empty()) h->name = name;
  std::string size = get("GNU.sparse.size");
  if (size.empty()) size = get("GNU.sparse.realsize");
  if (!size.empty()) {
    auto n = tar::ParseDecimal(size);
    if (!n) return bad;
    h->size = *n;
  }
  if (v1) {
    NFC_ASSIGN_OR_RETURN(auto map, ReadSparseMap1x0());
    return std::optional<std::vector<Span>>(std::move(map));
  }
  auto n = tar::ParseDecimal(get("GNU.sparse.numblocks"));
  if (!n || *n < 0 || *n > std::numeric_limits<int64_t>::max() / 2) return bad;
  std::vector<std::string_view> fields;
  const std::string text = get("GNU.sparse.map");
  for (size_t pos = 0; !text.empty();) {
    size_t comma = text.find(',', pos);
    fields.push_back(std::string_view(text).substr(pos, comma == std::string::npos ? comma : comma - pos));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  if (static_cast<uint64_t>(fields.size()) != 2 * static_cast<uint64_t>(*n)) return bad;
  std::vector<Span> map;
  for (size_t i = 0; i + 1 < fields.size(); i += 2) {
    auto off = tar::ParseDecimal(fields[i]), len = tar::ParseDecimal(fields[i + 1]);
    if (!off || !len) return bad;
    map.push_back({*off, *len});
  }
  return std::optional<std::vector<Span>>(std::move(map));
}

// GNU sparse 1.0: the map leads the entry's data as newline-terminated decimal numbers (count, then offset
// and length pairs), padded to whole blocks; reading stops at the end of the block holding the last one.
Result<std::vector<TarReader::Span>> TarReader::ReadSparseMap1x0() {
  const Error bad = Error::InvalidArgument("tar: invalid GNU sparse 1.0 map");
  std::vector<Span> map;
  std::string token;
  int64_t count = -1, offset = 0;
  bool have_offset = false;
  char blk[tar::kBlockSize];
  while (count < 0 || static_cast<int64_t>(map.size()) < count) {
    if (remaining_ < tar::kBlockSize) return Error::DataLoss("tar: unexpected EOF in a GNU sparse map");
    NFC_RETURN_IF_ERROR(ReadExactly(blk, tar::kBlockSize, "a GNU sparse map"));
    remaining_ -= tar::kBlockSize;
    for (char c : blk) {
      if (count >= 0 && static_cast<int64_t>(map.size()) >= count) break;
      if (c != '\n') {
        if (token.size() >= tar::kMaxSpecialFileSize) return bad;
        token += c;
        continue;
      }
      auto v = tar::ParseDecimal(token);
      token.clear();
      if (!v) return bad;
      if (count < 0) {
        if (*v < 0 || *v > std::numeric_limits<int64_t>::max() / 2) return bad;
        count = *v;
      } else if (!have_offset) {
        offset = *v;
        have_offset = true;
      } else {
        map.push_back({offset, *v});
        have_offset = false;
      }
    }
  }
  return map;
}

Status TarReader::ReadPhysical(uint64_t logical_offset, uint64_t n,
                               const std::function<Status(uint64_t, const char*, size_t)>& fn) {
  if (buf_.size() < kChunk) buf_.resize(kChunk);
  while (n > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(n, buf_.size()));
    NFC_RETURN_IF_ERROR(ReadExactly(buf_.data(), want, "the data of the entry"));
    remaining_ -= want;
    n -= want;
    NFC_RETURN_IF_ERROR(fn(logical_offset, buf_.data(), want));
    logical_offset += want;
  }
  return Ok();
}

Status TarReader::ReadData(const std::function<Status(uint64_t, const char*, size_t)>& fn) {
  if (error_) return *error_;
  if (data_read_) return Error::FailedPrecondition("tar: entry data read twice");
  data_read_ = true;
  Status st = Ok();
  if (!sparse_) {
    st = ReadPhysical(0, remaining_, fn);
  } else {
    uint64_t pos = 0;
    for (const Span& hole : holes_) {
      st = ReadPhysical(pos, static_cast<uint64_t>(hole.offset) - pos, fn);
      pos = static_cast<uint64_t>(hole.offset);
      for (uint64_t left = static_cast<uint64_t>(hole.length); st.ok() && left > 0;) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(left, sizeof kZeros));
        st = fn(pos, kZeros, n);
        pos += n;
        left -= n;
      }
      if (!st.ok()) break;
    }
  }
  if (!st.ok()) return Fail(st.error());
  return Ok();
}

}  // namespace nfc::image
