#include "base/unix_socket.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <utility>

#include "base/fs.h"
#include "temp_dir.h"

namespace nfc {
namespace {

using namespace std::chrono_literals;

class UnixSocketTest : public ::testing::Test {
 protected:
  // Accepts one connection, reads the request line, answers `reply` and then `stream`, and closes.
  std::thread ServeOnce(int listener, std::string reply, std::string stream = "") {
    return std::thread([listener, reply = std::move(reply), stream = std::move(stream), this] {
      int c = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      ASSERT_GE(c, 0);
      char ch;
      while (::read(c, &ch, 1) == 1 && ch != '\n') request_.push_back(ch);
      std::string out = reply + stream;
      if (!out.empty()) {
        EXPECT_EQ(::write(c, out.data(), out.size()), static_cast<ssize_t>(out.size()));
      }
      ::close(c);
    });
  }

  test_support::TempDir dir_{"unix-socket-test"};
  std::string request_;
};

TEST_F(UnixSocketTest, ListenReplacesAStaleSocketAndSetsMode0600) {
  std::string path = dir_.Path("s.sock");
  { ASSERT_TRUE(ListenUnix(path).ok()); }  // closed: the file stays behind, like after a crash
  auto listener = ListenUnix(path);
  ASSERT_TRUE(listener.ok()) << listener.error().message();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto fd = ConnectUnix(path);
  EXPECT_TRUE(fd.ok()) << fd.error().message();
}

TEST_F(UnixSocketTest, ListenRefusesToReplaceAFile) {
  std::string path = dir_.Path("not-a-socket");
  ASSERT_TRUE(fs::WriteFileDurably(path, "data").ok());
  auto listener = ListenUnix(path);
  ASSERT_FALSE(listener.ok());
  EXPECT_EQ(listener.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(fs::ReadFile(path, 10).value(), "data");
}

TEST_F(UnixSocketTest, ConnectReachesPathsLongerThanSunPath) {
  std::string deep = dir_.path() + "/" + std::string(60, 'a') + "/" + std::string(60, 'b');
  ASSERT_TRUE(fs::MakeDirs(deep, 0755).ok());
  char cwd[4096];
  ASSERT_NE(::getcwd(cwd, sizeof cwd), nullptr);
  ASSERT_EQ(::chdir(deep.c_str()), 0);
  auto listener = ListenUnix("c.sock");  // relative: the absolute path is too long to bind
  ASSERT_EQ(::chdir(cwd), 0);
  ASSERT_TRUE(listener.ok()) << listener.error().message();
  std::string path = deep + "/c.sock";
  ASSERT_GT(path.size(), 108u);
  auto fd = ConnectUnix(path);
  EXPECT_TRUE(fd.ok()) << fd.error().message();
}

TEST_F(UnixSocketTest, ConnectToNothingNamesThePath) {
  auto fd = ConnectUnix(dir_.Path("absent.sock"));
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(fd.error().message().find(dir_.Path("absent.sock")), std::string::npos);
}

TEST_F(UnixSocketTest, HybridVsockHandshakeLeavesTheStreamUnread) {
  std::string path = dir_.Path("v.sock");
  auto listener = ListenUnix(path);
  ASSERT_TRUE(listener.ok());
  std::thread server = ServeOnce(listener->get(), "OK 1073741824\n", "hello from the guest");
  auto fd = DialHybridVsock(path, 1024, 2s);
  ASSERT_TRUE(fd.ok()) << fd.error().message();
  std::string got(64, '\0');
  ssize_t n = ::read(fd->get(), got.data(), got.size());
  server.join();
  ASSERT_GT(n, 0);
  got.resize(static_cast<size_t>(n));
  EXPECT_EQ(request_, "CONNECT 1024");
  EXPECT_EQ(got, "hello from the guest");
}

TEST_F(UnixSocketTest, HybridVsockClosedBeforeOkIsUnavailable) {
  std::string path = dir_.Path("v.sock");
  auto listener = ListenUnix(path);
  ASSERT_TRUE(listener.ok());
  std::thread server = ServeOnce(listener->get(), "");
  auto fd = DialHybridVsock(path, 52, 2s);
  server.join();
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.error().code(), ErrorCode::kUnavailable);
}

TEST_F(UnixSocketTest, HybridVsockRejectsAnUnexpectedAnswer) {
  std::string path = dir_.Path("v.sock");
  auto listener = ListenUnix(path);
  ASSERT_TRUE(listener.ok());
  std::thread server = ServeOnce(listener->get(), "NO\n");
  auto fd = DialHybridVsock(path, 52, 2s);
  server.join();
  ASSERT_FALSE(fd.ok());
  EXPECT_NE(fd.error().message().find("unexpected answer 'NO'"), std::string::npos) << fd.error().message();
}

TEST_F(UnixSocketTest, HybridVsockTimesOutWhenNobodyAnswers) {
  std::string path = dir_.Path("v.sock");
  auto listener = ListenUnix(path);  // never accepted: the connection sits in the backlog
  ASSERT_TRUE(listener.ok());
  auto start = std::chrono::steady_clock::now();
  auto fd = DialHybridVsock(path, 52, 200ms);
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.error().code(), ErrorCode::kTimeout);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 190ms);  // poll() rounds to whole milliseconds
}

}  // namespace
}  // namespace nfc
