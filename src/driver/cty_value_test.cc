#include "driver/cty_value.h"

#include <gtest/gtest.h>

#include <cmath>

#include "driver/config_reader.h"
#include "driver/test_util.h"

namespace nfc::driver {
namespace {

using testing::Hex;
using Kind = CtyValue::Kind;

CtyValue MustDecode(std::string_view hex) {
  Result<CtyValue> v = DecodeCtyMsgpack(Hex(hex));
  EXPECT_TRUE(v.ok()) << hex << ": " << (v.ok() ? "" : v.error().message());
  return v.ok() ? *v : CtyValue();
}

std::string MustFail(std::string_view bytes) {
  Result<CtyValue> v = DecodeCtyMsgpack(bytes);
  EXPECT_FALSE(v.ok()) << "decoded: " << (v.ok() ? v->Describe() : "");
  return v.ok() ? "" : v.error().message();
}

// Reference 4.3: the full worked example, 92 bytes.
TEST(CtyMsgpackTest, WorkedExampleFullConfig) {
  CtyValue v = MustDecode(
      "86 a4 61 72 67 73 92 a5 68 65 6c 6c 6f a5 77 6f 72 6c 64 a7 63 6f 6d 6d 61 6e 64"
      "a9 2f 62 69 6e 2f 65 63 68 6f a3 65 6e 76 81 a3 46 4f 4f a3 62 61 72"
      "a5 69 6d 61 67 65 ab 61 6c 70 69 6e 65 2e 65 78 74 34 a8 6d 65 6d 5f 73 69 7a 65 cd 02 00"
      "aa 76 63 70 75 5f 63 6f 75 6e 74 02");
  ASSERT_EQ(v.kind(), Kind::kMap);
  ASSERT_EQ(v.as_map().size(), 6u);
  EXPECT_EQ(*v.Find("args"), CtyValue::MakeList({CtyValue::String("hello"), CtyValue::String("world")}));
  EXPECT_EQ(*v.Find("command"), CtyValue::String("/bin/echo"));
  EXPECT_EQ(*v.Find("env"), CtyValue::MakeMap({{"FOO", CtyValue::String("bar")}}));
  EXPECT_EQ(*v.Find("image"), CtyValue::String("alpine.ext4"));
  EXPECT_EQ(*v.Find("mem_size"), CtyValue::Int(512));
  EXPECT_EQ(*v.Find("vcpu_count"), CtyValue::Int(2));
}

// Reference 4.3: only image given; absent optionals arrive as explicit nil, defaults as ints.
TEST(CtyMsgpackTest, WorkedExampleDefaultsAndNils) {
  CtyValue v = MustDecode(
      "86 a4 61 72 67 73 c0 a7 63 6f 6d 6d 61 6e 64 c0 a3 65 6e 76 c0 a5 69 6d 61 67 65 ab 61 6c 70 69 6e 65 "
      "2e 65"
      "78 74 34 a8 6d 65 6d 5f 73 69 7a 65 cc 80 aa 76 63 70 75 5f 63 6f 75 6e 74 01");
  EXPECT_TRUE(v.Find("args")->is_null());
  EXPECT_TRUE(v.Find("command")->is_null());
  EXPECT_TRUE(v.Find("env")->is_null());
  EXPECT_EQ(*v.Find("mem_size"), CtyValue::Int(128));
  EXPECT_EQ(*v.Find("vcpu_count"), CtyValue::Int(1));
}

TEST(CtyMsgpackTest, NumberSamplesFromReference) {
  EXPECT_EQ(MustDecode("cb 3f f8 00 00 00 00 00 00"), CtyValue::Float(1.5));
  EXPECT_EQ(MustDecode("a3 30 2e 31"), CtyValue::String("0.1"));  // decimal text: a number read as string
  EXPECT_EQ(MustDecode("ff"), CtyValue::Int(-1));
  EXPECT_EQ(MustDecode("d0 df"), CtyValue::Int(-33));
  EXPECT_EQ(MustDecode("cc c8"), CtyValue::Int(200));
  EXPECT_EQ(MustDecode("cd 01 2c"), CtyValue::Int(300));
  EXPECT_EQ(MustDecode("ce 00 01 11 70"), CtyValue::Int(70000));
  EXPECT_EQ(MustDecode("cf 00 00 00 01 00 00 00 00"), CtyValue::Int(int64_t{1} << 32));
  EXPECT_EQ(MustDecode("c3"), CtyValue::Bool(true));
  EXPECT_EQ(MustDecode("c2"), CtyValue::Bool(false));
  EXPECT_EQ(MustDecode("90"), CtyValue::MakeList({}));
  EXPECT_EQ(MustDecode("80"), CtyValue::MakeMap({}));
  EXPECT_EQ(MustDecode("82 a1 41 a1 31 a1 42 a1 32"),
            CtyValue::MakeMap({{"A", CtyValue::String("1")}, {"B", CtyValue::String("2")}}));
  EXPECT_EQ(MustDecode("91 81 a3 46 4f 4f a3 62 61 72"),
            CtyValue::MakeList({CtyValue::MakeMap({{"FOO", CtyValue::String("bar")}})}));
  EXPECT_EQ(MustDecode(
                "81 b0 66 69 72 65 63 72 61 63 6b 65 72 5f 70 61 74 68 b4 2f 75 73 72 2f 62 69 6e 2f 66 69 72"
                "65 63 72 61 63 6b 65 72"),
            CtyValue::MakeMap({{"firecracker_path", CtyValue::String("/usr/bin/firecracker")}}));
}

TEST(CtyMsgpackTest, EveryIntegerWidth) {
  EXPECT_EQ(MustDecode("00"), CtyValue::Int(0));
  EXPECT_EQ(MustDecode("7f"), CtyValue::Int(127));
  EXPECT_EQ(MustDecode("e0"), CtyValue::Int(-32));
  EXPECT_EQ(MustDecode("d0 80"), CtyValue::Int(-128));
  EXPECT_EQ(MustDecode("d1 80 00"), CtyValue::Int(-32768));
  EXPECT_EQ(MustDecode("d2 80 00 00 00"), CtyValue::Int(INT32_MIN));
  EXPECT_EQ(MustDecode("d3 80 00 00 00 00 00 00 00"), CtyValue::Int(INT64_MIN));
  EXPECT_EQ(MustDecode("cf 7f ff ff ff ff ff ff ff"), CtyValue::Int(INT64_MAX));
  EXPECT_EQ(MustDecode("cf ff ff ff ff ff ff ff ff"), CtyValue::Uint(UINT64_MAX));
  // Non-canonical wide forms of small values are still numbers.
  EXPECT_EQ(MustDecode("d3 00 00 00 00 00 00 00 05"), CtyValue::Int(5));
}

TEST(CtyMsgpackTest, Floats) {
  EXPECT_EQ(MustDecode("ca 3f c0 00 00"),
            CtyValue::Float(1.5));  // float32 accepted though cty never sends it
  EXPECT_EQ(MustDecode("cb 40 02 00 00 00 00 00 00"), CtyValue::Float(2.25));
  EXPECT_EQ(MustDecode("cb 7f f0 00 00 00 00 00 00"), CtyValue::Float(HUGE_VAL));
  EXPECT_EQ(MustDecode("cb ff f0 00 00 00 00 00 00"), CtyValue::Float(-HUGE_VAL));
  EXPECT_NE(MustFail(Hex("cb 7f f8 00 00 00 00 00 00")).find("NaN"), std::string::npos);
}

TEST(CtyMsgpackTest, StringSizeClasses) {
  EXPECT_EQ(MustDecode("a0"), CtyValue::String(""));
  std::string s40(40, 'x');
  EXPECT_EQ(*DecodeCtyMsgpack(Hex("d9 28") + s40), CtyValue::String(s40));
  std::string s300(300, 'y');
  EXPECT_EQ(*DecodeCtyMsgpack(Hex("da 01 2c") + s300), CtyValue::String(s300));
  std::string s70k(70000, 'z');
  EXPECT_EQ(*DecodeCtyMsgpack(Hex("db 00 01 11 70") + s70k), CtyValue::String(s70k));
  EXPECT_EQ(MustDecode("a3 e2 82 ac"), CtyValue::String("\xe2\x82\xac"));  // UTF-8 passes through
}

TEST(CtyMsgpackTest, ContainerSizeClasses) {
  std::string array16 = Hex("dc 00 14");
  for (int i = 0; i < 20; i++) array16 += static_cast<char>(i);
  Result<CtyValue> a = DecodeCtyMsgpack(array16);
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->as_list().size(), 20u);
  EXPECT_EQ(a->as_list()[19], CtyValue::Int(19));

  std::string array32 = Hex("dd 00 00 00 02 c0 c3");
  EXPECT_EQ(*DecodeCtyMsgpack(array32), CtyValue::MakeList({CtyValue(), CtyValue::Bool(true)}));

  std::string map16 = Hex("de 00 11");
  for (int i = 0; i < 17; i++) {
    map16 += static_cast<char>(0xa2);
    map16 += static_cast<char>('a' + i);
    map16 += 'k';
    map16 += static_cast<char>(i);
  }
  Result<CtyValue> m = DecodeCtyMsgpack(map16);
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_EQ(m->as_map().size(), 17u);
  EXPECT_EQ(*m->Find("qk"), CtyValue::Int(16));

  EXPECT_EQ(*DecodeCtyMsgpack(Hex("df 00 00 00 01 a1 6b 90")),
            CtyValue::MakeMap({{"k", CtyValue::MakeList({})}}));
}

TEST(CtyMsgpackTest, UnknownValuesAreRejectedClearly) {
  // fixext1 type 0: cty's unknown value (reference 4.2, pitfall 7).
  std::string message = MustFail(Hex("d4 00 00"));
  EXPECT_NE(message.find("not known"), std::string::npos) << message;
  // Inside an object, the error says where.
  message = MustFail(Hex("81 a5 69 6d 61 67 65 d4 00 00"));
  EXPECT_NE(message.find("$.image"), std::string::npos) << message;
  // Refined unknown: ext type 0x0c with a small map payload.
  message = MustFail(Hex("c7 03 0c 81 01 c3"));
  EXPECT_NE(message.find("extension of type 12"), std::string::npos) << message;
}

TEST(CtyMsgpackTest, MalformedInputIsRejected) {
  EXPECT_NE(MustFail("").find("empty"), std::string::npos);
  EXPECT_NE(MustFail(Hex("a5 61 62")).find("truncated"), std::string::npos);
  EXPECT_NE(MustFail(Hex("81 a1 61")).find("truncated"), std::string::npos);
  EXPECT_NE(MustFail(Hex("c0 c0")).find("trailing"), std::string::npos);
  EXPECT_NE(MustFail(Hex("c4 01 00")).find("binary"), std::string::npos);
  EXPECT_NE(MustFail(Hex("81 01 c0")).find("not a string"), std::string::npos);
  EXPECT_NE(MustFail(Hex("82 a1 61 01 a1 61 02")).find("repeats"), std::string::npos);
  EXPECT_FALSE(DecodeCtyMsgpack(Hex("c1")).ok());  // never-used byte
}

TEST(CtyMsgpackTest, DepthAndSizeLimits) {
  std::string deep(40, static_cast<char>(0x91));
  deep += static_cast<char>(0xc0);
  EXPECT_FALSE(DecodeCtyMsgpack(deep).ok());
  // A length prefix far beyond the data must not allocate or crash.
  EXPECT_FALSE(DecodeCtyMsgpack(Hex("dd 7f ff ff ff")).ok());
  EXPECT_FALSE(DecodeCtyMsgpack(Hex("db 7f ff ff ff 61")).ok());
}

TEST(CtyNumberTest, IntegersFromEveryEncoding) {
  EXPECT_EQ(*CtyNumberToInt64(CtyValue::Int(-7)), -7);
  EXPECT_EQ(*CtyNumberToInt64(CtyValue::Float(512.0)), 512);
  EXPECT_EQ(*CtyNumberToInt64(CtyValue::String("512")), 512);
  EXPECT_EQ(*CtyNumberToInt64(CtyValue::String("512.000")), 512);
  EXPECT_FALSE(CtyNumberToInt64(CtyValue::String("0.1")).ok());
  EXPECT_FALSE(CtyNumberToInt64(CtyValue::Float(1.5)).ok());
  EXPECT_FALSE(CtyNumberToInt64(CtyValue::String("100000000000000000000")).ok());
  EXPECT_FALSE(CtyNumberToInt64(CtyValue::Uint(UINT64_MAX)).ok());
  EXPECT_FALSE(CtyNumberToInt64(CtyValue::String("abc")).ok());
  EXPECT_FALSE(CtyNumberToInt64(CtyValue::Bool(true)).ok());
  EXPECT_DOUBLE_EQ(*CtyNumberToDouble(CtyValue::String("0.1")), 0.1);
}

TEST(CtyValueTest, DescribeForMessages) {
  CtyValue v = CtyValue::MakeMap(
      {{"a", CtyValue::MakeList({CtyValue::String("x\"y"), CtyValue::Int(1)})}, {"b", CtyValue()}});
  EXPECT_EQ(v.Describe(), "{\"a\" = [\"x\\\"y\", 1], \"b\" = null}");
}

}  // namespace
}  // namespace nfc::driver
