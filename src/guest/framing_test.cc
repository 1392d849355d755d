#include "guest/framing.h"

#include <gtest/gtest.h>

namespace nfc::guest {
namespace {

TEST(Framing, DecodesFramesSplitAtEveryByte) {
  std::string stream;
  AppendFrame(stream, "first");
  AppendFrame(stream, "");
  AppendFrame(stream, std::string(70000, 'x'));
  FrameDecoder d;
  std::vector<std::string> got;
  for (char c : stream) {
    d.Feed(&c, 1);
    while (auto p = d.Next()) got.push_back(*p);
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], "first");
  EXPECT_EQ(got[1], "");
  EXPECT_EQ(got[2].size(), 70000u);
  EXPECT_EQ(d.discarded_bytes(), 0u);
}

TEST(Framing, ResynchronisesAfterGarbageAndCorruption) {
  std::string stream = "garbage NFG1 with a fake magic";
  AppendFrame(stream, "one");
  std::string bad;
  AppendFrame(bad, "two");
  bad[kFrameHeaderSize] ^= 1;  // payload CRC no longer matches
  stream += bad;
  AppendFrame(stream, "three");
  FrameDecoder d;
  d.Feed(stream.data(), stream.size());
  std::vector<std::string> got;
  while (auto p = d.Next()) got.push_back(*p);
  EXPECT_EQ(got, (std::vector<std::string>{"one", "three"}));
  EXPECT_GT(d.discarded_bytes(), 0u);
}

// A frame cut off by a reconnect claims more bytes than will ever come; after DropStalePartial the decoder
// finds the next frame inside what it had taken for that frame's payload.
TEST(Framing, StalePartialFrameDoesNotSwallowTheNextFrame) {
  std::string cut;
  AppendFrame(cut, std::string(1000, 'a'));
  cut.resize(100);
  std::string next;
  AppendFrame(next, "hello again");
  FrameDecoder d;
  d.Feed(cut.data(), cut.size());
  d.Feed(next.data(), next.size());
  EXPECT_FALSE(d.Next().has_value());
  EXPECT_TRUE(d.HasPartial());
  d.DropStalePartial();
  auto p = d.Next();
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(*p, "hello again");
}

TEST(Framing, RefusesOversizedLength) {
  std::string stream;
  AppendFrame(stream, std::string(100, 'b'));
  FrameDecoder d(50);
  d.Feed(stream.data(), stream.size());
  EXPECT_FALSE(d.Next().has_value());
  EXPECT_GT(d.discarded_bytes(), 0u);
}

}  // namespace
}  // namespace nfc::guest
