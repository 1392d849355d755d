// The pure parts of reading tar: one 512-byte header block, numeric fields and pax records, each decoded with
// the rules of Go's archive/tar (Go 1.19, reader.go and strconv.go), which is what decides whether Docker,
// containerd, podman, umoci and skopeo accept a layer. No I/O here; TarReader drives these over a stream.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"

namespace nfc::image::tar {

constexpr size_t kBlockSize = 512;
constexpr size_t kMaxSpecialFileSize = 1 << 20;  // pax records and GNU long names: Go refuses larger ones

// The header formats Go tells apart (by checksum and magic).
enum class Format { kUnknown, kV7, kUstar, kStar, kGnu };
Format FormatOf(std::string_view block);

// One entry's header as Go's Header holds it: numbers are int64 as parsed (range checks belong to whoever
// applies the entry), times are normalized to 0 <= nsec < 1e9.
struct Header {
  char typeflag = '0';
  std::string name;
  std::string linkname;
  int64_t mode = 0;
  int64_t uid = 0;
  int64_t gid = 0;
  int64_t size = 0;  // for a sparse file: its logical size
  int64_t mtime = 0;
  int64_t mtime_nsec = 0;
  int64_t devmajor = 0;
  int64_t devminor = 0;
  std::map<std::string, std::string> pax;  // the entry's own pax records (an 'x' header before it)
};

// Decodes a header block that is not all zeros. Errors are Go's ErrHeader cases: a bad checksum, or a
// numeric field that does not parse.
Status ParseHeaderBlock(std::string_view block, Header* h);

// Go's parseNumeric: base-256 when the first byte has its top bit set, otherwise octal padded with spaces or
// NULs. nullopt where Go sets ErrHeader.
std::optional<int64_t> ParseNumeric(std::string_view field);
std::optional<int64_t> ParseOctal(std::string_view field);
// strconv.ParseInt(s, 10, 64): an optional sign and decimal digits, nothing else.
std::optional<int64_t> ParseDecimal(std::string_view s);
// A pax time "sec[.frac]" (frac truncated to nanoseconds), normalized like time.Unix(sec, nsec).
bool ParsePaxTime(std::string_view s, int64_t* sec, int64_t* nsec);
// The text up to the first NUL (Go's parseString).
std::string CString(std::string_view field);

// The records of an 'x' or 'g' header's data. GNU sparse 0.0 offset/numbytes records are folded into
// "GNU.sparse.map" as Go does.
Result<std::map<std::string, std::string>> ParsePaxRecords(std::string_view data);
// Applies an 'x' header's records to the entry that follows it (Go's mergePAX); empty values keep the
// header's own field.
Status MergePax(const std::map<std::string, std::string>& pax, Header* h);

}  // namespace nfc::image::tar
