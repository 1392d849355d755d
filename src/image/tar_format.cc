#include "image/tar_format.h"

#include <limits>
#include <vector>

namespace nfc::image::tar {
namespace {

// Field offsets and lengths in a header block (POSIX ustar; GNU and star reuse the prefix area).
struct Field {
  size_t off, len;
  std::string_view In(std::string_view block) const { return block.substr(off, len); }
};
constexpr Field kName{0, 100}, kMode{100, 8}, kUid{108, 8}, kGid{116, 8}, kSize{124, 12}, kMtime{136, 12},
    kChksum{148, 8}, kLinkname{157, 100}, kMagic{257, 6}, kVersion{263, 2}, kDevMajor{329, 8},
    kDevMinor{337, 8}, kUstarPrefix{345, 155}, kStarPrefix{345, 131}, kStarAtime{476, 12},
    kStarCtime{488, 12}, kStarTrailer{508, 4}, kGnuAtime{345, 12}, kGnuCtime{357, 12};
constexpr size_t kTypeflag = 156;

bool IsAscii(std::string_view s) {
  for (unsigned char c : s) {
    if (c >= 0x80) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s, std::string_view chars) {
  size_t b = s.find_first_not_of(chars);
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(chars);
  return s.substr(b, e - b + 1);
}

// Decodes numeric fields of one block, remembering whether any failed (Go's parser.err).
class Numbers {
 public:
  explicit Numbers(std::string_view block) : block_(block) {}
  int64_t Get(Field f) {
    auto v = ParseNumeric(f.In(block_));
    if (!v) failed_ = true;
    return v.value_or(0);
  }
  bool failed() const { return failed_; }

 private:
  std::string_view block_;
  bool failed_ = false;
};

// One "<len> <key>=<value>\n" record; advances s past it.
Status ParseRecord(std::string_view* s, std::string* key, std::string* value) {
  const Error bad = Error::InvalidArgument("tar: invalid pax record");
  size_t sp = s->find(' ');
  if (sp == std::string_view::npos) return bad;
  auto n = ParseDecimal(s->substr(0, sp));
  if (!n || *n < 5 || static_cast<uint64_t>(*n) > s->size()) return bad;
  int64_t rec_len = *n - static_cast<int64_t>(sp + 1);
  if (rec_len <= 0) return bad;
  std::string_view rest = s->substr(sp + 1);
  std::string_view rec = rest.substr(0, static_cast<size_t>(rec_len - 1));
  if (rest[static_cast<size_t>(rec_len - 1)] != '\n') return bad;
  size_t eq = rec.find('=');
  if (eq == std::string_view::npos || eq == 0) return bad;
  std::string_view k = rec.substr(0, eq), v = rec.substr(eq + 1);
  const bool names_text = k == "path" || k == "linkpath" || k == "uname" || k == "gname";
  if (names_text ? v.find('\0') != std::string_view::npos : k.find('\0') != std::string_view::npos)
    return bad;
  *key = k;
  *value = v;
  s->remove_prefix(sp + 1 + static_cast<size_t>(rec_len));
  return Ok();
}

}  // namespace

std::string CString(std::string_view field) {
  return std::string(field.substr(0, field.find('\0')));
}

std::optional<int64_t> ParseDecimal(std::string_view s) {
  bool neg = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return std::nullopt;
  const uint64_t limit = neg ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
  uint64_t x = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (x > (limit - d) / 10) return std::nullopt;
    x = x * 10 + d;
  }
  return neg ? static_cast<int64_t>(0 - x) : static_cast<int64_t>(x);
}

std::optional<int64_t> ParseOctal(std::string_view field) {
  std::string_view s = Trim(field, std::string_view(" \0", 2));
  if (s.empty()) return 0;
  s = s.substr(0, s.find('\0'));
  if (s.empty()) return std::nullopt;
  uint64_t x = 0;
  for (char c : s) {
    if (c < '0' || c > '7') return std::nullopt;
    if (x >> 61) return std::nullopt;  // ParseUint's range error
    x = x << 3 | static_cast<uint64_t>(c - '0');
  }
  return static_cast<int64_t>(x);
}

std::optional<int64_t> ParseNumeric(std::string_view b) {
  if (b.empty() || !(static_cast<unsigned char>(b[0]) & 0x80)) return ParseOctal(b);
  // Base-256 (GNU and star): big-endian two's complement, the top bit of the first byte only marks it.
  const unsigned char inv = (static_cast<unsigned char>(b[0]) & 0x40) ? 0xff : 0x00;
  uint64_t x = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(b[i]) ^ inv;
    if (i == 0) c &= 0x7f;
    if (x >> 56) return std::nullopt;
    x = x << 8 | c;
  }
  if (x >> 63) return std::nullopt;
  return inv ? ~static_cast<int64_t>(x) : static_cast<int64_t>(x);
}

bool ParsePaxTime(std::string_view s, int64_t* sec, int64_t* nsec) {
  size_t dot = s.find('.');
  std::string_view ss = s.substr(0, dot);
  std::string_view sn = dot == std::string_view::npos ? std::string_view() : s.substr(dot + 1);
  auto secs = ParseDecimal(ss);
  if (!secs) return false;
  int64_t ns = 0;
  for (size_t i = 0; i < sn.size(); ++i) {
    if (sn[i] < '0' || sn[i] > '9') return false;
    if (i < 9) ns = ns * 10 + (sn[i] - '0');
  }
  for (size_t i = sn.size(); i < 9; ++i) ns *= 10;
  if (!ss.empty() && ss[0] == '-') ns = -ns;
  *sec = *secs;
  if (ns < 0) {  // time.Unix's normalization
    if (*sec == std::numeric_limits<int64_t>::min()) {
      ns = 0;
    } else {
      --*sec;
      ns += 1000000000;
    }
  }
  *nsec = ns;
  return true;
}

Format FormatOf(std::string_view block) {
  auto stored = ParseOctal(kChksum.In(block));
  int64_t unsigned_sum = 0, signed_sum = 0;
  for (size_t i = 0; i < kBlockSize; ++i) {
    unsigned char c = (i >= kChksum.off && i < kChksum.off + kChksum.len) ? ' ' : block[i];
    unsigned_sum += c;
    signed_sum += static_cast<signed char>(c);
  }
  if (!stored || (*stored != unsigned_sum && *stored != signed_sum)) return Format::kUnknown;
  std::string_view magic = kMagic.In(block), version = kVersion.In(block);
  if (magic == std::string_view("ustar\0", 6)) {
    return kStarTrailer.In(block) == std::string_view("tar\0", 4) ? Format::kStar : Format::kUstar;
  }
  if (magic == "ustar " && version == std::string_view(" \0", 2)) return Format::kGnu;
  return Format::kV7;
}

Status ParseHeaderBlock(std::string_view block, Header* h) {
  const Format format = FormatOf(block);
  if (format == Format::kUnknown) return Error::InvalidArgument("tar: invalid header (checksum mismatch)");
  Numbers n(block);
  *h = Header{};
  h->typeflag = block[kTypeflag];
  h->name = CString(kName.In(block));
  h->linkname = CString(kLinkname.In(block));
  h->size = n.Get(kSize);
  h->mode = n.Get(kMode);
  h->uid = n.Get(kUid);
  h->gid = n.Get(kGid);
  h->mtime = n.Get(kMtime);
  if (format != Format::kV7) {
    h->devmajor = n.Get(kDevMajor);
    h->devminor = n.Get(kDevMinor);
    std::string prefix;
    if (format == Format::kUstar) {
      prefix = CString(kUstarPrefix.In(block));
    } else if (format == Format::kStar) {
      prefix = CString(kStarPrefix.In(block));
      n.Get(kStarAtime);
      n.Get(kStarCtime);
    } else {
      // GNU headers have atime/ctime where ustar has its prefix; Go falls back to reading a prefix there
      // (files written by Go before 1.8) only when those times do not parse.
      Numbers times(block);
      if (block[kGnuAtime.off] != 0) times.Get(kGnuAtime);
      if (block[kGnuCtime.off] != 0) times.Get(kGnuCtime);
      if (times.failed()) {
        std::string s = CString(kUstarPrefix.In(block));
        if (IsAscii(s)) prefix = s;
      }
    }
    if (!prefix.empty()) h->name = prefix + "/" + h->name;
  }
  if (n.failed()) return Error::InvalidArgument("tar: invalid header (a numeric field does not parse)");
  return Ok();
}

Result<std::map<std::string, std::string>> ParsePaxRecords(std::string_view data) {
  std::map<std::string, std::string> records;
  std::vector<std::string> sparse;  // GNU sparse 0.0: offset, numbytes, offset, ...
  std::string k, v;
  while (!data.empty()) {
    NFC_RETURN_IF_ERROR(ParseRecord(&data, &k, &v));
    if (k == "GNU.sparse.offset" || k == "GNU.sparse.numbytes") {
      const bool want_offset = sparse.size() % 2 == 0;
      if ((k == "GNU.sparse.offset") != want_offset || v.find(',') != std::string::npos) {
        return Error::InvalidArgument("tar: invalid GNU sparse 0.0 records");
      }
      sparse.push_back(v);
      continue;
    }
    records[k] = v;
  }
  if (!sparse.empty()) {
    std::string joined;
    for (const auto& s : sparse) joined += (joined.empty() ? "" : ",") + s;
    records["GNU.sparse.map"] = joined;
  }
  return records;
}

Status MergePax(const std::map<std::string, std::string>& pax, Header* h) {
  const Error bad = Error::InvalidArgument("tar: invalid pax header value");
  for (const auto& [k, v] : pax) {
    if (v.empty()) continue;
    int64_t sec = 0, nsec = 0;
    if (k == "path") {
      h->name = v;
    } else if (k == "linkpath") {
      h->linkname = v;
    } else if (k == "uid" || k == "gid" || k == "size") {
      auto x = ParseDecimal(v);
      if (!x) return bad;
      (k == "uid" ? h->uid : k == "gid" ? h->gid : h->size) = *x;
    } else if (k == "mtime" || k == "atime" || k == "ctime") {
      if (!ParsePaxTime(v, &sec, &nsec)) return bad;
      if (k == "mtime") {
        h->mtime = sec;
        h->mtime_nsec = nsec;
      }
    }
  }
  h->pax = pax;
  return Ok();
}

}  // namespace nfc::image::tar
