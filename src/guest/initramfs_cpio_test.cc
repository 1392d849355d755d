#include "guest/initramfs_cpio.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "require.h"
#include "temp_dir.h"

namespace nfc::guest {
namespace {

TEST(Cpio, BuildsNewcWithParentsAndTrailer) {
  auto a = BuildCpio({{"a/b/c.txt", S_IFREG | 0644, "hello"}});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->size() % 4, 0u);
  EXPECT_EQ(a->substr(0, 6), "070701");
  auto entries = ParseCpio(*a);
  ASSERT_TRUE(entries.ok()) << entries.error().ToString();
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[0].path, "a");
  EXPECT_EQ((*entries)[0].mode, static_cast<uint32_t>(S_IFDIR | 0755));
  EXPECT_EQ((*entries)[1].path, "a/b");
  EXPECT_EQ((*entries)[2].path, "a/b/c.txt");
  EXPECT_EQ((*entries)[2].data, "hello");
  EXPECT_NE(a->find("TRAILER!!!"), std::string::npos);
}

TEST(Cpio, RefusesEscapingPaths) {
  EXPECT_FALSE(BuildCpio({{"../etc/passwd", S_IFREG | 0644, ""}}).ok());
  EXPECT_FALSE(BuildCpio({{"/abs", S_IFREG | 0644, ""}}).ok());
  EXPECT_FALSE(BuildCpio({{"a//b", S_IFREG | 0644, ""}}).ok());
}

// GNU cpio (a different implementation) must read what we write.
TEST(Cpio, GnuCpioReadsOurArchive) {
  NFC_REQUIRE_OR_SKIP(system("command -v cpio >/dev/null 2>&1") == 0, "cpio is not installed");
  auto a = BuildCpio({{"nomad/task.json", S_IFREG | 0600, "{\"version\":1}"}});
  ASSERT_TRUE(a.ok());
  test_support::TempDir dir("cpio");
  std::string archive = dir.Path("a.cpio");
  std::ofstream(archive) << *a;
  std::string cmd = "cd " + dir.path() + " && cpio -id --quiet < a.cpio";
  ASSERT_EQ(system(cmd.c_str()), 0);
  std::ifstream f(dir.Path("nomad/task.json"));
  std::stringstream content;
  content << f.rdbuf();
  EXPECT_EQ(content.str(), "{\"version\":1}");
}

TEST(Cpio, TaskInitramfsAppendsAlignedAfterBase) {
  test_support::TempDir dir("cpio");
  std::string base = dir.Path("base");
  std::string out = dir.Path("out");
  std::ofstream(base) << "xyzzy";  // 5 bytes: needs 3 bytes of padding
  TaskSpec spec;
  spec.root.device = "/dev/vda";
  spec.process.args = std::vector<std::string>{"/bin/true"};
  ASSERT_TRUE(WriteTaskInitramfs(base, spec, out).ok());
  std::ifstream f(out);
  std::stringstream content;
  content << f.rdbuf();
  std::string s = content.str();
  EXPECT_EQ(s.substr(0, 5), "xyzzy");
  EXPECT_EQ(s.substr(5, 3), std::string(3, '\0'));
  auto entries = ParseCpio(std::string_view(s).substr(8));
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->back().path, "nomad/task.json");
  EXPECT_EQ(entries->back().mode & 0777, 0600u);
  auto parsed = ParseTaskSpec(entries->back().data);
  ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
  EXPECT_EQ(parsed->process.args->at(0), "/bin/true");
  struct stat st;
  ASSERT_EQ(stat(out.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

}  // namespace
}  // namespace nfc::guest
