#include "base/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

namespace nfc {
namespace {

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

TEST(ProcessTest, ChildInheritsOnlyStdioAndPassedFds) {
  // A descriptor that is NOT close-on-exec must still not reach the child.
  int leaky = open("/dev/null", O_RDONLY);
  ASSERT_GE(leaky, 0);
  int extra[2];
  ASSERT_EQ(pipe2(extra, O_CLOEXEC), 0);
  int out[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '"};
  o.stdout_fd = out[1];
  o.extra_fds = {{extra[1], 7}};
  auto child = Spawn(o);
  ASSERT_TRUE(child.ok()) << child.error().message();
  close(out[1]);
  std::string fds = ReadAll(out[0]);
  close(out[0]);
  ASSERT_TRUE(WaitForExit(child->pid).ok());
  // 0,1,2, the passed 7, and the fd ls itself opens for /proc/self/fd (3).
  EXPECT_EQ(fds, "0 1 2 3 7 ");
  close(leaky);
  close(extra[0]);
  close(extra[1]);
}

TEST(ProcessTest, ExecFailureIsAnError) {
  SpawnOptions o;
  o.argv = {"/nonexistent/program"};
  auto child = Spawn(o);
  ASSERT_FALSE(child.ok());
  EXPECT_EQ(child.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(child.error().message().find("/nonexistent/program"), std::string::npos);
}

TEST(ProcessTest, IdentityDetectsExit) {
  SpawnOptions o;
  o.argv = {"sleep", "30"};
  auto child = Spawn(o);
  ASSERT_TRUE(child.ok());
  auto id = IdentifyProcess(child->pid);
  ASSERT_TRUE(id.ok());
  EXPECT_TRUE(id->IsAlive());
  ProcessIdentity wrong = *id;
  wrong.start_time += 1;
  EXPECT_FALSE(wrong.IsAlive());
  kill(child->pid, SIGKILL);
  auto st = WaitForExit(child->pid);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(DescribeWaitStatus(*st), "killed by signal 9 (SIGKILL)");
  EXPECT_FALSE(id->IsAlive());
}

}  // namespace
}  // namespace nfc
