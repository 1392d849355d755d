#include "image/layer_tree.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

namespace nfc::image {
namespace {

TarEntry File(std::string path, uint64_t size = 1) {
  TarEntry e;
  e.type = TarEntry::Type::kFile;
  e.path = std::move(path);
  e.mode = 0644;
  e.size = size;
  return e;
}
TarEntry Dir(std::string path) {
  TarEntry e;
  e.type = TarEntry::Type::kDir;
  e.path = std::move(path);
  e.mode = 0755;
  return e;
}
TarEntry Link(TarEntry::Type t, std::string path, std::string target) {
  TarEntry e;
  e.type = t;
  e.path = std::move(path);
  e.link_target = std::move(target);
  return e;
}

TEST(LayerTreeTest, WhiteoutsAndOpaqueDirectories) {
  LayerTree t;
  uint64_t i = 0;
  ASSERT_TRUE(t.Apply(0, i++, Dir("etc/")).ok());
  ASSERT_TRUE(t.Apply(0, i++, File("etc/a")).ok());
  ASSERT_TRUE(t.Apply(0, i++, File("etc/b")).ok());
  ASSERT_TRUE(t.Apply(0, i++, File("opq/old")).ok());
  ASSERT_TRUE(t.Apply(0, i++, File("opq/sub/deep")).ok());
  i = 0;
  ASSERT_TRUE(t.Apply(1, i++, File("./etc/.wh.a")).ok());
  ASSERT_TRUE(t.Apply(1, i++, Dir("opq/")).ok());
  ASSERT_TRUE(t.Apply(1, i++, File("opq/new")).ok());
  ASSERT_TRUE(t.Apply(1, i++, File("opq/.wh..wh..opq")).ok());
  ASSERT_TRUE(t.Apply(1, i++, File("gone/.wh.x")).ok());
  EXPECT_EQ(t.Find("etc/a"), nullptr);
  EXPECT_NE(t.Find("etc/b"), nullptr);
  EXPECT_EQ(t.Find("opq/old"), nullptr);
  EXPECT_EQ(t.Find("opq/sub"), nullptr);
  ASSERT_NE(t.Find("opq/new"), nullptr);
  EXPECT_EQ(t.Find("opq/new")->inode->layer, 1);
  EXPECT_EQ(t.Find("gone"), nullptr) << "a whiteout must not create its directory";
  auto stats = t.Finalize();
  EXPECT_EQ(stats.regular_files, 2u);
}

TEST(LayerTreeTest, ReplacementAndHardLinks) {
  LayerTree t;
  ASSERT_TRUE(t.Apply(0, 0, File("bin/busybox", 100)).ok());
  ASSERT_TRUE(t.Apply(0, 1, Link(TarEntry::Type::kHardlink, "bin/sh", "bin/busybox")).ok());
  ASSERT_TRUE(t.Apply(0, 2, Link(TarEntry::Type::kSymlink, "bin/ls", "busybox")).ok());
  ASSERT_TRUE(t.Apply(0, 3, File("x/file")).ok());
  // A later layer replaces one name of the hard-linked pair and turns a directory into a file.
  ASSERT_TRUE(t.Apply(1, 0, File("bin/busybox", 5)).ok());
  ASSERT_TRUE(t.Apply(1, 1, File("x", 3)).ok());
  auto stats = t.Finalize();
  EXPECT_EQ(t.Find("bin/sh")->inode->size, 100u);
  EXPECT_EQ(t.Find("bin/sh")->inode->nlink, 1u);
  EXPECT_EQ(t.Find("bin/busybox")->inode->size, 5u);
  EXPECT_TRUE(S_ISLNK(t.Find("bin/ls")->inode->mode));
  EXPECT_TRUE(S_ISREG(t.Find("x")->inode->mode));
  EXPECT_EQ(stats.hardlinks, 0u);
  LayerTree t2;
  ASSERT_TRUE(t2.Apply(0, 0, File("a")).ok());
  ASSERT_TRUE(t2.Apply(0, 1, Link(TarEntry::Type::kHardlink, "b", "a")).ok());
  EXPECT_EQ(t2.Finalize().hardlinks, 1u);
  EXPECT_EQ(t2.Find("a")->inode->nlink, 2u);
  EXPECT_EQ(t2.Find("a")->inode.get(), t2.Find("b")->inode.get());
}

TEST(LayerTreeTest, FollowsSymlinkedParentsInsideTheRoot) {
  LayerTree t;
  ASSERT_TRUE(t.Apply(0, 0, Dir("usr/lib/")).ok());
  ASSERT_TRUE(t.Apply(0, 1, Link(TarEntry::Type::kSymlink, "lib", "/usr/lib")).ok());
  ASSERT_TRUE(t.Apply(1, 0, File("lib/libc.so")).ok());
  EXPECT_NE(t.Find("usr/lib/libc.so"), nullptr);
}

TEST(LayerTreeTest, RejectsHostileEntries) {
  struct Case {
    std::vector<TarEntry> entries;
    const char* expect;
  };
  std::vector<Case> cases = {
      {{File("../evil")}, "\"..\""},
      {{File("a/../../evil")}, "\"..\""},
      {{File("/etc/passwd")}, "absolute"},
      {{Link(TarEntry::Type::kHardlink, "h", "../../etc/shadow")}, "\"..\""},
      {{Link(TarEntry::Type::kHardlink, "h", "/etc/shadow")}, "absolute"},
      {{Link(TarEntry::Type::kHardlink, "h", "missing")}, "does not exist"},
      {{Dir("d/"), Link(TarEntry::Type::kHardlink, "h", "d")}, "hard link to directory"},
      {{Link(TarEntry::Type::kSymlink, "esc", "../../.."), File("esc/etc/x")}, "outside the root"},
      {{Link(TarEntry::Type::kSymlink, "loop", "loop"), File("loop/x")}, "too many levels"},
      {{File("f"), File("f/child")}, "not a directory"},
      {{File(std::string(256, 'n'))}, "255"},
  };
  for (const auto& c : cases) {
    LayerTree t;
    Status last = Ok();
    for (size_t i = 0; i < c.entries.size() && last.ok(); ++i) last = t.Apply(0, i, c.entries[i]);
    ASSERT_FALSE(last.ok()) << c.expect;
    EXPECT_NE(last.error().message().find(c.expect), std::string::npos) << last.error().message();
  }
}

}  // namespace
}  // namespace nfc::image
