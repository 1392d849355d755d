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
  ASSERT_NE(t.Find("gone"), nullptr)
      << "containerd makes a whiteout's missing parent (mkparent) like any other";
  EXPECT_TRUE(t.Find("gone")->children.empty());
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

TEST(LayerTreeTest, RejectsEntriesThatLeaveTheRootOrCannotBeApplied) {
  struct Case {
    std::vector<TarEntry> entries;
    const char* expect;
  };
  TarEntry socket = File("sock");
  socket.type = TarEntry::Type::kOther;
  socket.typeflag = 'V';
  TarEntry big_uid = File("u");
  big_uid.uid = 0xffffffff;
  TarEntry big_dev = File("dev");
  big_dev.type = TarEntry::Type::kChar;
  big_dev.dev_minor = int64_t{1} << 32;
  std::vector<Case> cases = {
      {{File("../evil")}, "\"../evil\" leads outside the root"},
      {{File("a/../../evil")}, "leads outside the root"},
      {{File("./x/../../../evil")}, "leads outside the root"},
      {{File("etc/shadow"), Link(TarEntry::Type::kHardlink, "h", "../../etc/shadow")},
       "hard link target \"../../etc/shadow\" leads outside the root"},
      {{Link(TarEntry::Type::kHardlink, "h", "missing")}, "does not exist"},
      {{File("self"), Link(TarEntry::Type::kHardlink, "self", "self")}, "does not exist"},
      {{Dir("d/"), Link(TarEntry::Type::kHardlink, "h", "d")}, "is a directory"},
      {{Link(TarEntry::Type::kHardlink, "h", "./")}, "is the root directory"},
      {{Link(TarEntry::Type::kSymlink, "loop", "loop"), File("loop/x")}, "too many levels"},
      {{File("f"), File("f/child")}, "not a directory"},
      {{File("f"), File("f/.wh.x")}, "not a directory"},
      {{File(std::string(256, 'n'))}, "255"},
      {{Link(TarEntry::Type::kSymlink, "long", std::string(300, 'x')), File("long/f")}, "255"},
      {{File("d/.wh.")}, "invalid whiteout name"},
      {{File("d/.wh..")}, "invalid whiteout name"},
      {{socket}, "unsupported entry type 'V'"},
      {{big_uid}, "out of range"},
      {{big_dev}, "device number out of range"},
  };
  for (const auto& c : cases) {
    LayerTree t;
    Status last = Ok();
    for (size_t i = 0; i < c.entries.size() && last.ok(); ++i) last = t.Apply(0, i, c.entries[i]);
    ASSERT_FALSE(last.ok()) << c.expect;
    EXPECT_NE(last.error().message().find(c.expect), std::string::npos) << last.error().message();
  }
}

TEST(LayerTreeTest, AbsoluteNamesAreTakenFromTheRootAndRootEntriesIgnored) {
  LayerTree t;
  TarEntry root = Dir("./");
  root.mode = 0700;
  root.uid = 5;
  ASSERT_TRUE(t.Apply(0, 0, root).ok());
  ASSERT_TRUE(t.Apply(0, 1, File("/etc/passwd")).ok());
  ASSERT_TRUE(t.Apply(0, 2, File("/../../bin//sh")).ok()) << "\"..\" at the root stays at the root";
  ASSERT_TRUE(t.Apply(0, 3, File("/")).ok()) << "a non-directory naming the root is ignored too";
  ASSERT_TRUE(t.Apply(0, 4, Link(TarEntry::Type::kHardlink, "/bin/sh2", "/bin/sh")).ok());
  EXPECT_EQ(t.root()->inode->mode, S_IFDIR | 0755u) << "containerd ignores the root entry's metadata";
  EXPECT_EQ(t.root()->inode->uid, 0u);
  EXPECT_NE(t.Find("etc/passwd"), nullptr);
  ASSERT_NE(t.Find("bin/sh2"), nullptr);
  EXPECT_EQ(t.Find("bin/sh2")->inode, t.Find("bin/sh")->inode);
}

TEST(LayerTreeTest, SymlinkedParentsAreBoundedByTheRootAndMissingTargetsCreated) {
  LayerTree t;
  ASSERT_TRUE(t.Apply(0, 0, Link(TarEntry::Type::kSymlink, "esc", "../../..")).ok());
  ASSERT_TRUE(t.Apply(0, 1, File("esc/etc/x")).ok());
  ASSERT_TRUE(t.Apply(0, 2, Link(TarEntry::Type::kSymlink, "lib", "/usr/lib")).ok());
  ASSERT_TRUE(t.Apply(0, 3, File("lib/libc.so")).ok());
  ASSERT_TRUE(t.Apply(0, 4, Link(TarEntry::Type::kSymlink, "usr/lib/up", "../../opt")).ok());
  ASSERT_TRUE(t.Apply(0, 5, File("lib/up/tool")).ok());
  EXPECT_NE(t.Find("etc/x"), nullptr) << "a symlink leading above the root stops at the root (RootPath)";
  EXPECT_NE(t.Find("usr/lib/libc.so"), nullptr) << "the missing target directory is created";
  EXPECT_NE(t.Find("opt/tool"), nullptr);
  EXPECT_TRUE(S_ISLNK(t.Find("esc")->inode->mode));
}

TEST(LayerTreeTest, WhiteoutsHideOnlyWhatLowerLayersMadeInAnyOrder) {
  LayerTree t;
  ASSERT_TRUE(t.Apply(0, 0, File("d/sub/old")).ok());
  ASSERT_TRUE(t.Apply(0, 1, File("d/gone")).ok());
  ASSERT_TRUE(t.Apply(0, 2, File("keep/f")).ok());
  ASSERT_TRUE(t.Apply(1, 0, File("d/sub/new")).ok());
  ASSERT_TRUE(t.Apply(1, 1, File("d/.wh..wh..opq")).ok());  // after this layer's own entries
  ASSERT_TRUE(t.Apply(1, 2, File("keep/f")).ok());
  ASSERT_TRUE(t.Apply(1, 3, File("keep/.wh.f")).ok());  // a whiteout of this layer's own file
  EXPECT_NE(t.Find("d/sub/new"), nullptr);
  EXPECT_EQ(t.Find("d/sub/old"), nullptr);
  EXPECT_EQ(t.Find("d/gone"), nullptr);
  ASSERT_NE(t.Find("keep/f"), nullptr);
  EXPECT_EQ(t.Find("keep/f")->inode->layer, 1);
}

TEST(LayerTreeTest, NameAndPathLengthsAreThoseOfTheKernel) {
  LayerTree t;
  const std::string name(254, 'n');
  ASSERT_TRUE(t.Apply(0, 0, File("d/" + name)).ok());
  ASSERT_TRUE(t.Apply(1, 0, File("d/.wh." + name)).ok()) << "a whiteout's name may exceed 255 bytes";
  EXPECT_EQ(t.Find("d/" + name), nullptr);
  std::string deep;
  while (deep.size() < 4000) deep += std::string(99, 'x') + "/";
  Status st = t.Apply(0, 1, File(deep + std::string(100, 'y')));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("4095"), std::string::npos) << st.error().message();
  // Through a symlink the resolved directory grows past PATH_MAX although the entry name is short.
  ASSERT_TRUE(t.Apply(0, 2, Link(TarEntry::Type::kSymlink, "s", "/" + deep.substr(0, 3800))).ok());
  st = t.Apply(0, 3, File("s/" + std::string(200, 'z') + "/" + std::string(200, 'z') + "/f"));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("4095"), std::string::npos) << st.error().message();
}

TEST(LayerTreeTest, MetadataAsContainerdSetsIt) {
  LayerTree t;
  TarEntry f = File("bin/tool");
  f.mode = 0644;
  f.uid = 1;
  f.xattrs = {
      {"security.capability", "cap"}, {"trusted.overlay.opaque", "y"}, {"user.note", "n"}, {"odd", "x"}};
  ASSERT_TRUE(t.Apply(0, 0, f).ok());
  TarEntry h = Link(TarEntry::Type::kHardlink, "bin/tool2", "bin/tool");
  h.mode = 04755;
  h.uid = 3000000;
  h.mtime = -5;
  h.xattrs = {{"user.more", "m"}};
  ASSERT_TRUE(t.Apply(0, 1, h).ok());
  TarEntry l = Link(TarEntry::Type::kSymlink, "bin/l", "tool");
  l.xattrs = {{"user.note", "n"}, {"security.selinux", "s"}};
  ASSERT_TRUE(t.Apply(0, 2, l).ok());
  TarEntry dev = File("dev/big");
  dev.type = TarEntry::Type::kBlock;
  dev.dev_major = 0x12345;
  dev.dev_minor = 0x1234567;
  ASSERT_TRUE(t.Apply(0, 3, dev).ok());
  const Inode& tool = *t.Find("bin/tool")->inode;
  EXPECT_EQ(tool.mode, S_IFREG | 04755u) << "the hard link's header chmods the shared inode";
  EXPECT_EQ(tool.uid, 3000000u);
  EXPECT_EQ(tool.mtime, 0) << "times before 1970 become 0 (boundTime)";
  using X = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(tool.xattrs, (X{{"security.capability", "cap"}, {"user.more", "m"}, {"user.note", "n"}}));
  EXPECT_EQ(t.Find("bin/l")->inode->xattrs, (X{{"security.selinux", "s"}}));
  EXPECT_EQ(t.Find("dev/big")->inode->dev_major, 0x345u);
  EXPECT_EQ(t.Find("dev/big")->inode->dev_minor, 0x34567u);
}

}  // namespace
}  // namespace nfc::image
