#include "shim/fifo_writer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <thread>

#include "temp_dir.h"

namespace nfc::shim {
namespace {

class FifoWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);  // as in the shim
    fifo_ = dir_.Path("out.fifo");
    ASSERT_EQ(mkfifo(fifo_.c_str(), 0600), 0);
  }

  // Reads exactly n bytes from a reader fd (giving up after 20 s). A FIFO read returns 0 while no writer is
  // connected yet: keep trying.
  static std::string ReadN(int fd, size_t n) {
    std::string out;
    char buf[65536];
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (out.size() < n && std::chrono::steady_clock::now() < until) {
      ssize_t r = read(fd, buf, std::min(sizeof buf, n - out.size()));
      if (r <= 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      out.append(buf, static_cast<size_t>(r));
    }
    return out;
  }

  test_support::TempDir dir_{"fifo"};
  std::string fifo_;
  std::atomic<bool> cancel_{false};
};

TEST_F(FifoWriterTest, WaitsForAReaderThenDelivers) {
  FifoWriter w(fifo_);
  w.poll_interval = std::chrono::milliseconds(10);
  auto done = std::async(std::launch::async, [&] { return w.Write("hello", cancel_); });
  EXPECT_EQ(done.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout) << "no reader yet";
  int r = open(fifo_.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(r, 0);
  EXPECT_TRUE(done.get().ok());
  EXPECT_EQ(ReadN(r, 5), "hello");
  close(r);
}

TEST_F(FifoWriterTest, ReopensWhenTheReaderGoesAwayAndLosesNothingItWrote) {
  FifoWriter w(fifo_);
  w.poll_interval = std::chrono::milliseconds(10);
  int r1 = open(fifo_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(r1, 0);
  ASSERT_TRUE(w.Write("first\n", cancel_).ok());
  fcntl(r1, F_SETFL, 0);
  EXPECT_EQ(ReadN(r1, 6), "first\n");
  close(r1);  // logmon restarts
  auto done = std::async(std::launch::async, [&] { return w.Write("second\n", cancel_); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  int r2 = open(fifo_.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(r2, 0);
  ASSERT_TRUE(done.get().ok());
  EXPECT_EQ(ReadN(r2, 7), "second\n");
  EXPECT_EQ(w.open_count(), 2);
  close(r2);
}

TEST_F(FifoWriterTest, BackPressureDeliversLargeOutputInOrder) {
  FifoWriter w(fifo_);
  std::string data;
  for (int i = 0; data.size() < (1 << 20); i++) data += "line " + std::to_string(i) + "\n";
  int r = open(fifo_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(r, 0);
  fcntl(r, F_SETFL, 0);
  auto done = std::async(std::launch::async, [&] { return w.Write(data, cancel_); });
  std::string got = ReadN(r, data.size());
  ASSERT_TRUE(done.get().ok());
  EXPECT_EQ(got, data);
  close(r);
}

TEST_F(FifoWriterTest, CancelEndsTheWaitAndReportsProgress) {
  FifoWriter w(fifo_);
  w.poll_interval = std::chrono::milliseconds(10);
  auto done = std::async(std::launch::async, [&] {
    size_t written = 99;
    Status s = w.Write("never read", cancel_, &written);
    return std::make_pair(std::move(s), written);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  cancel_ = true;
  auto [status, written] = done.get();
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code(), ErrorCode::kCancelled);
  EXPECT_EQ(written, 0u);
}

TEST_F(FifoWriterTest, RefusesSymlinksAndRegularFiles) {
  std::string link = dir_.Path("link");
  ASSERT_EQ(symlink(fifo_.c_str(), link.c_str()), 0);
  FifoWriter via_link(link);
  Status s = via_link.Write("x", cancel_);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("symlink"), std::string::npos) << s.error().message();

  std::string file = dir_.Path("file");
  std::ofstream(file) << "";
  FifoWriter to_file(file);
  s = to_file.Write("x", cancel_);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("neither a FIFO"), std::string::npos) << s.error().message();

  FifoWriter missing(dir_.Path("missing"));
  s = missing.Write("x", cancel_);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find(dir_.Path("missing")), std::string::npos);
}

TEST_F(FifoWriterTest, DevNullWhenLoggingIsDisabled) {
  FifoWriter w("/dev/null");
  EXPECT_TRUE(w.Write("discarded", cancel_).ok());
}

}  // namespace
}  // namespace nfc::shim
