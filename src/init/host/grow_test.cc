#include "init/host/grow.h"

#include <gtest/gtest.h>

namespace nfc::init::host {
namespace {

void Put64(std::string& s, size_t off, uint64_t v) {
  for (size_t i = 0; i < 8; i++) s[off + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void Put32(std::string& s, size_t off, uint32_t v) {
  for (size_t i = 0; i < 4; i++) s[off + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint64_t Get64(const std::string& s, size_t off) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | static_cast<uint8_t>(s[off + static_cast<size_t>(i)]);
  return v;
}
uint32_t Get32(const std::string& s, size_t off) {
  return static_cast<uint32_t>(Get64(s.substr(off, 4) + std::string(4, '\0'), 0));
}

// A disk head like genimage writes: protective MBR, header at LBA 1, 128 entries of 128 bytes from LBA 2,
// two partitions (boot 2048..4095, data 4096..8191) on a 10240-sector disk.
std::string Head() {
  std::string head(size_t{34} * 512, '\0');
  head[446 + 4] = static_cast<char>(0xEE);
  Put32(head, 446 + 12, 10239);
  std::string h(512, '\0');
  h.replace(0, 8, "EFI PART");
  Put32(h, 8, 0x00010000);
  Put32(h, 12, 92);
  Put64(h, 24, 1);
  Put64(h, 32, 10239);
  Put64(h, 40, 34);
  Put64(h, 48, 10206);
  Put64(h, 72, 2);
  Put32(h, 80, 128);
  Put32(h, 84, 128);
  for (auto [i, first, last] : {std::tuple{0, 2048, 4095}, std::tuple{1, 4096, 8191}}) {
    size_t o = 1024 + static_cast<size_t>(i) * 128;
    head[o] = 1;  // a non-zero type GUID
    Put64(head, o + 32, static_cast<uint64_t>(first));
    Put64(head, o + 40, static_cast<uint64_t>(last));
  }
  Put32(h, 88, Crc32(std::string_view(head).substr(1024, size_t{128} * 128)));
  Put32(h, 16, Crc32(std::string_view(h).substr(0, 92)));
  head.replace(512, 512, h);
  return head;
}

bool HeaderCrcOk(std::string h) {
  uint32_t crc = Get32(h, 16);
  Put32(h, 16, 0);
  return Crc32(std::string_view(h).substr(0, 92)) == crc;
}

TEST(Grow, Crc32KnownValue) {
  EXPECT_EQ(Crc32("123456789"), 0xCBF43926u);
}

TEST(Grow, LastPartitionGrowsAndBothHeadersAreConsistent) {
  std::string head = Head();
  ASSERT_EQ(*GptHeadBytes(head.substr(512, 512)), 34u * 512);
  auto plan = PlanGptGrowth(head, 40960, 2);
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  ASSERT_TRUE(plan->has_value());
  const GptGrowth& g = **plan;
  // Last usable: 40960 - 1 (backup header) - 32 (backup entries) - 1 = 40926; ends on a MiB boundary.
  EXPECT_EQ(g.first_lba, 4096u);
  EXPECT_EQ(g.new_last_lba, 19u * 2048 - 1);
  EXPECT_EQ(Get64(g.head, 1024 + 128 + 40), g.new_last_lba);
  EXPECT_EQ(Get64(g.head, 1024 + 40), 4095u) << "the other partition must not move";
  std::string primary = g.head.substr(512, 512);
  EXPECT_TRUE(HeaderCrcOk(primary));
  EXPECT_EQ(Get64(primary, 32), 40959u);
  EXPECT_EQ(Get64(primary, 48), 40926u);
  EXPECT_EQ(Get32(primary, 88), Crc32(std::string_view(g.head).substr(1024, size_t{128} * 128)));
  EXPECT_TRUE(HeaderCrcOk(g.backup_header));
  EXPECT_EQ(Get64(g.backup_header, 24), 40959u);
  EXPECT_EQ(Get64(g.backup_header, 32), 1u);
  EXPECT_EQ(Get64(g.backup_header, 72), 40927u);
  EXPECT_EQ(g.backup_entries_lba, 40927u);
  EXPECT_EQ(g.backup_entries, g.head.substr(1024, size_t{128} * 128));
  EXPECT_EQ(Get32(g.head, 446 + 12), 40959u);
}

TEST(Grow, NothingToDoOrRefused) {
  std::string head = Head();
  auto same = PlanGptGrowth(head, 10240, 2);
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same->has_value()) << "already at the end";
  auto not_last = PlanGptGrowth(head, 40960, 1);
  ASSERT_FALSE(not_last.ok());
  EXPECT_NE(not_last.error().message().find("not the last"), std::string::npos);
  head[1024 + 40] ^= 1;  // entries no longer match their CRC
  auto corrupt = PlanGptGrowth(head, 40960, 2);
  ASSERT_FALSE(corrupt.ok());
  EXPECT_NE(corrupt.error().message().find("CRC"), std::string::npos);
  EXPECT_FALSE(GptHeadBytes(std::string(512, 'x')).ok());
}

}  // namespace
}  // namespace nfc::init::host
