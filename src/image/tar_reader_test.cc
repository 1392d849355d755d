// TarReader and tar_format against hand-made byte streams: each case is a rule of Go's archive/tar (what it
// accepts at the end of a stream, what it refuses), so a regression shows as a named case.
#include "image/tar_reader.h"

#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <cstdio>

namespace nfc::image {
namespace {

std::string Octal(uint64_t v, size_t width) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%0*llo", static_cast<int>(width - 1), static_cast<unsigned long long>(v));
  return std::string(buf) + '\0';
}

void Put(std::string* b, size_t off, const std::string& v) {
  b->replace(off, v.size(), v);
}

struct H {
  std::string name;
  char type = '0';
  uint64_t size = 0;
  std::string link;
  std::string magic = std::string(
      "ustar\0"
      "00",
      8);
  std::string uid = Octal(0, 8);
};

std::string Header(const H& h) {
  std::string b(512, '\0');
  Put(&b, 0, h.name.substr(0, 100));
  Put(&b, 100, Octal(0644, 8));
  Put(&b, 108, h.uid);
  Put(&b, 116, Octal(0, 8));
  Put(&b, 124, Octal(h.size, 12));
  Put(&b, 136, Octal(1700000000, 12));
  b[156] = h.type;
  Put(&b, 157, h.link.substr(0, 100));
  Put(&b, 257, h.magic);
  Put(&b, 148, std::string(8, ' '));
  unsigned sum = 0;
  for (unsigned char c : b) sum += c;
  Put(&b, 148, Octal(sum, 7) + " ");
  return b;
}

std::string Padded(std::string data) {
  data.resize((data.size() + 511) / 512 * 512, '\0');
  return data;
}

std::string Entry(const H& h, const std::string& data) {
  H copy = h;
  copy.size = data.size();
  return Header(copy) + Padded(data);
}

std::string PaxRecord(const std::string& k, const std::string& v) {
  size_t n = k.size() + v.size() + 3;
  n += std::to_string(n).size();
  if (std::to_string(n).size() + k.size() + v.size() + 3 != n) ++n;
  return std::to_string(n) + " " + k + "=" + v + "\n";
}

const std::string kEnd(1024, '\0');

struct Read {
  std::vector<tar::Header> headers;
  std::vector<std::string> data;
  std::optional<Error> error;
};

Read ReadAll(const std::string& stream) {
  auto src = OpenMemorySource(stream);
  TarReader r(src.get());
  Read out;
  tar::Header h;
  while (true) {
    auto more = r.Next(&h);
    if (!more.ok()) {
      out.error = more.error();
      return out;
    }
    if (!*more) return out;
    std::string data;
    Status st = r.ReadData([&](uint64_t off, const char* p, size_t n) {
      EXPECT_EQ(off, data.size());
      data.append(p, n);
      return Ok();
    });
    if (!st.ok()) {
      out.error = st.error();
      return out;
    }
    out.headers.push_back(h);
    out.data.push_back(data);
  }
}

TEST(TarReaderTest, StreamMayEndAfterTheLastDataWithoutPaddingOrEndBlocks) {
  const std::string two = Entry({"a"}, "hello") + Entry({"b"}, "world!");
  for (size_t cut : {two.size() - 512 + 6, two.size(), two.size() + 512, two.size() + 1024}) {
    std::string s = (two + kEnd).substr(0, cut);
    Read r = ReadAll(s);
    ASSERT_FALSE(r.error) << cut << ": " << r.error->message();
    ASSERT_EQ(r.headers.size(), 2u) << cut;
    EXPECT_EQ(r.data[1], "world!");
  }
  EXPECT_FALSE(ReadAll("").error) << "an empty stream is an empty archive";
}

TEST(TarReaderTest, TruncationInsideDataOrHeaderIsAnError) {
  const std::string s = Entry({"a"}, std::string(1000, 'x')) + Entry({"b"}, "bb");
  for (size_t cut : {size_t{600}, size_t{1023}, size_t{1024 + 100}, size_t{1536 + 1}}) {
    Read r = ReadAll(s.substr(0, cut));
    ASSERT_TRUE(r.error) << "cut at " << cut;
    EXPECT_NE(r.error->message().find("unexpected EOF"), std::string::npos) << r.error->message();
  }
  // Skipping unread data must notice the truncation too.
  auto src = OpenMemorySource(std::string_view(s).substr(0, 700));
  TarReader reader(src.get());
  tar::Header h;
  ASSERT_TRUE(reader.Next(&h).ok());
  auto more = reader.Next(&h);
  ASSERT_FALSE(more.ok());
  EXPECT_NE(more.error().message().find("unexpected EOF"), std::string::npos);
}

TEST(TarReaderTest, RefusesBadChecksumAndDataAfterAZeroBlock) {
  std::string bad = Entry({"a"}, "x");
  bad[0] = 'b';
  Read r = ReadAll(bad);
  ASSERT_TRUE(r.error);
  EXPECT_NE(r.error->message().find("checksum"), std::string::npos) << r.error->message();
  r = ReadAll(Entry({"a"}, "x") + std::string(512, '\0') + Entry({"b"}, "y"));
  ASSERT_TRUE(r.error);
  EXPECT_NE(r.error->message().find("zero block"), std::string::npos) << r.error->message();
}

TEST(TarReaderTest, PaxRecordsOverrideTheHeader) {
  std::string long_name = std::string(150, 'n') + "/" + std::string(120, 'm');
  std::string pax = PaxRecord("path", long_name) + PaxRecord("uid", "3000000") +
                    PaxRecord("mtime", "1700000000.123456789123") + PaxRecord("SCHILY.xattr.user.k", "v\n=") +
                    PaxRecord("linkpath", "");
  std::string s = Entry({"PaxHeaders/x", 'x'}, pax) + Entry({"short"}, "data") + kEnd;
  Read r = ReadAll(s);
  ASSERT_FALSE(r.error) << r.error->message();
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].name, long_name);
  EXPECT_EQ(r.headers[0].uid, 3000000);
  EXPECT_EQ(r.headers[0].mtime, 1700000000);
  EXPECT_EQ(r.headers[0].mtime_nsec, 123456789);
  EXPECT_EQ(r.headers[0].pax.at("SCHILY.xattr.user.k"), "v\n=");
  r = ReadAll(Entry({"p", 'x'}, "12 uid=x\n") + Entry({"a"}, "") + kEnd);
  ASSERT_TRUE(r.error) << "a pax uid that is not a number is Go's ErrHeader";
  r = ReadAll(Entry({"p", 'x'}, "99 path=a\n") + Entry({"a"}, "") + kEnd);
  ASSERT_TRUE(r.error) << "a record longer than the data";
}

TEST(TarReaderTest, GnuLongNamesAndBase256Numbers) {
  std::string long_name = std::string(300, 'L');
  H gnu{"././@LongLink", 'L'};
  gnu.magic = std::string("ustar  \0", 8);
  H file{"trunc"};
  file.magic = gnu.magic;
  file.uid = std::string("\x80\x00\x00\x00\x00\x3d\x09\x00", 8);  // 4000000 in base-256
  Read r = ReadAll(Entry(gnu, long_name + '\0') + Entry(file, "x") + kEnd);
  ASSERT_FALSE(r.error) << r.error->message();
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].name, long_name);
  EXPECT_EQ(r.headers[0].uid, 4000000);
}

TEST(TarReaderTest, HeaderOnlyTypesCarryNoDataAndV7SlashIsADirectory) {
  H link{"l", '2', 4096, "target"};
  std::string s = Header(link) + Entry({"after"}, "z") + Entry({"olddir/", '\0'}, "") + kEnd;
  Read r = ReadAll(s);
  ASSERT_FALSE(r.error) << r.error->message();
  ASSERT_EQ(r.headers.size(), 3u);
  EXPECT_EQ(r.headers[0].linkname, "target");
  EXPECT_EQ(r.data[0], "");
  EXPECT_EQ(r.headers[1].name, "after");
  EXPECT_EQ(r.headers[2].typeflag, '5');
}

TEST(TarReaderTest, GlobalHeadersAreEntriesOfTheirOwn) {
  std::string s = Entry({"pax_global_header", 'g'}, PaxRecord("comment", "abc")) + Entry({"f"}, "1") + kEnd;
  Read r = ReadAll(s);
  ASSERT_FALSE(r.error) << r.error->message();
  ASSERT_EQ(r.headers.size(), 2u);
  EXPECT_EQ(r.headers[0].typeflag, 'g');
  EXPECT_EQ(r.headers[0].pax.at("comment"), "abc");
  EXPECT_TRUE(r.headers[1].pax.empty()) << "global records are not merged into later entries";
}

TEST(TarReaderTest, PaxSparseFilesReadBackWithZeroHoles) {
  // 0.1: the map in the records. Logical file: "hello" 5 zeros "abc" 2 zeros (size 15).
  std::string pax01 = PaxRecord("GNU.sparse.numblocks", "2") + PaxRecord("GNU.sparse.map", "0,5,10,3") +
                      PaxRecord("GNU.sparse.realsize", "15") + PaxRecord("GNU.sparse.name", "real-name");
  // 1.0: the map leads the data, padded to a block.
  std::string pax10 = PaxRecord("GNU.sparse.major", "1") + PaxRecord("GNU.sparse.minor", "0") +
                      PaxRecord("GNU.sparse.realsize", "15") + PaxRecord("GNU.sparse.name", "ten");
  std::string s = Entry({"x", 'x'}, pax01) + Entry({"GNUSparseFile.0/real-name"}, "helloabc") +
                  Entry({"x", 'x'}, pax10) +
                  Entry({"GNUSparseFile.0/ten"}, Padded("2\n0\n5\n10\n3\n") + "helloabc") + kEnd;
  Read r = ReadAll(s);
  ASSERT_FALSE(r.error) << r.error->message();
  ASSERT_EQ(r.headers.size(), 2u);
  const std::string want = std::string("hello") + std::string(5, '\0') + "abc" + std::string(2, '\0');
  EXPECT_EQ(r.headers[0].name, "real-name");
  EXPECT_EQ(r.headers[0].size, 15);
  EXPECT_EQ(r.data[0], want);
  EXPECT_EQ(r.headers[1].name, "ten");
  EXPECT_EQ(r.data[1], want);
  // A map that does not account for the stored bytes (Go: errUnrefData / errMissData).
  r = ReadAll(Entry({"x", 'x'}, pax01) + Entry({"f"}, "helloabcEXTRA") + kEnd);
  ASSERT_TRUE(r.error);
  r = ReadAll(Entry({"x", 'x'}, pax01 + PaxRecord("GNU.sparse.numblocks", "3")) + Entry({"f"}, "helloabc") +
              kEnd);
  ASSERT_TRUE(r.error) << "numblocks that disagrees with the map";
}

std::string Gzip(const std::string& data) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, data.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

Result<std::string> Decompress(const std::string& blob) {
  NFC_ASSIGN_OR_RETURN(auto s, OpenDecompressed(OpenMemorySource(blob), "blob"));
  std::string out;
  char buf[100];
  while (true) {
    NFC_ASSIGN_OR_RETURN(size_t n, s->Read(buf, sizeof buf));
    if (n == 0) return out;
    out.append(buf, n);
  }
}

TEST(LayerStreamTest, GzipAndZstdMustBeComplete) {
  const std::string tar = Entry({"a"}, std::string(3000, 'q'));
  std::string gz = Gzip(tar.substr(0, 1000)) + Gzip(tar.substr(1000));
  auto out = Decompress(gz);
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ(*out, tar) << "gzip members are concatenated";
  auto cut = Decompress(gz.substr(0, gz.size() - 3));
  ASSERT_FALSE(cut.ok()) << "a gzip stream cut inside its trailer";
  EXPECT_FALSE(Decompress(gz + "garbage").ok()) << "bytes after the last member that are not gzip";

  std::string zst(ZSTD_compressBound(tar.size()), '\0');
  zst.resize(ZSTD_compress(zst.data(), zst.size(), tar.data(), tar.size(), 3));
  out = Decompress(zst + zst);
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ(*out, tar + tar);
  cut = Decompress(zst.substr(0, zst.size() - 2));
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.error().message().find("ends early"), std::string::npos) << cut.error().message();
  out = Decompress("plain bytes");
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "plain bytes");
}

TEST(TarFormatTest, NumbersAsGoParsesThem) {
  EXPECT_EQ(tar::ParseNumeric(std::string("  0644 \0", 8)), 0644);
  EXPECT_EQ(tar::ParseNumeric(std::string("\0\0\0\0", 4)), 0);
  EXPECT_FALSE(tar::ParseNumeric("12 34"));
  EXPECT_FALSE(tar::ParseNumeric("0089"));
  EXPECT_EQ(tar::ParseNumeric(std::string("\xff\xff\xff\xff", 4)), -1) << "base-256, negative";
  EXPECT_EQ(tar::ParseDecimal("+42"), 42);
  EXPECT_FALSE(tar::ParseDecimal("4_2"));
  EXPECT_FALSE(tar::ParseDecimal("9223372036854775808"));
  EXPECT_EQ(tar::ParseDecimal("-9223372036854775808"), INT64_MIN);
  int64_t sec = 0, nsec = 0;
  ASSERT_TRUE(tar::ParsePaxTime("-1.5", &sec, &nsec));
  EXPECT_EQ(sec, -2);
  EXPECT_EQ(nsec, 500000000);
  EXPECT_FALSE(tar::ParsePaxTime("1.5x", &sec, &nsec));
  EXPECT_FALSE(tar::ParsePaxTime(".5", &sec, &nsec));
}

}  // namespace
}  // namespace nfc::image
