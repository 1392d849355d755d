#include "base/proc.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "base/process.h"

namespace nfc {
namespace {

// A real line from a process named "a) b (c" (comm may hold spaces and parentheses).
std::string StatLine(const std::string& comm, const std::string& state = "S") {
  return "4242 (" + comm + ") " + state +
         " 1 4242 4242 0 -1 4194560 1200 0 3 0 157 23 0 0 20 0 1 0 987654 12345678 321 18446744073709551615 "
         "1 1 "
         "0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
}

TEST(ProcStatTest, ParsesTheFieldsWeUse) {
  auto st = ParseProcStat(StatLine("firecracker"), "test");
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(st->pid, 4242);
  EXPECT_EQ(st->comm, "firecracker");
  EXPECT_EQ(st->state, 'S');
  EXPECT_EQ(st->ppid, 1);
  EXPECT_EQ(st->utime, 157u);
  EXPECT_EQ(st->stime, 23u);
  EXPECT_EQ(st->start_time, 987654u);
  EXPECT_EQ(st->rss_pages, 321u);
  EXPECT_FALSE(st->Exited());
}

TEST(ProcStatTest, CommWithSpacesAndParenthesesEndsAtTheLastParen) {
  auto st = ParseProcStat(StatLine("a) b (c) 9 9"), "test");
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(st->comm, "a) b (c) 9 9");
  EXPECT_EQ(st->state, 'S');
  EXPECT_EQ(st->start_time, 987654u);
}

TEST(ProcStatTest, ZombieAndDeadAreExited) {
  EXPECT_TRUE(ParseProcStat(StatLine("x", "Z"), "test")->Exited());
  EXPECT_TRUE(ParseProcStat(StatLine("x", "X"), "test")->Exited());
}

TEST(ProcStatTest, MalformedInputIsDataLossNotACrash) {
  for (const std::string& bad :
       {std::string(""), std::string("4242 firecracker S 1"), std::string("4242 (x) S 1 2"),
        std::string("x (y) ") + StatLine("z").substr(12), std::string("4242 (x"), std::string(") 4242 (x")}) {
    auto st = ParseProcStat(bad, "/proc/4242/stat");
    ASSERT_FALSE(st.ok()) << bad;
    EXPECT_EQ(st.error().code(), ErrorCode::kDataLoss);
    EXPECT_NE(st.error().message().find("/proc/4242/stat"), std::string::npos);
  }
  std::string line = StatLine("x");
  line.replace(line.find("987654"), 6, "98x654");
  auto st = ParseProcStat(line, "test");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("starttime \"98x654\""), std::string::npos) << st.error().message();
  line = StatLine("x");
  line.replace(line.find(" 157 "), 5, " 99999999999999999999999 ");  // overflows uint64
  EXPECT_FALSE(ParseProcStat(line, "test").ok());
}

TEST(ProcStatTest, ReadsOurOwnProcess) {
  auto st = ReadProcStat(::getpid());
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(st->pid, ::getpid());
  EXPECT_EQ(st->ppid, ::getppid());
  EXPECT_EQ(st->state, 'R');
  EXPECT_GT(st->rss_pages, 0u);
  EXPECT_EQ(st->start_time, ProcessStartTime(::getpid()).value());
}

TEST(ProcStatTest, MissingProcessIsNotFound) {
  auto st = ReadProcStat(0x3fffffff);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kNotFound);
}

TEST(ProcStatTest, ConvertsTicksAndPages) {
  long hz = sysconf(_SC_CLK_TCK);
  EXPECT_EQ(TicksToNanos(static_cast<uint64_t>(hz)), 1000000000u);
  EXPECT_EQ(PagesToBytes(3), 3u * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)));
}

}  // namespace
}  // namespace nfc
