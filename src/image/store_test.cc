#include "image/store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "base/fs.h"

namespace nfc::image {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nfc-store-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { ASSERT_TRUE(fs::RemoveTree(root_).ok()); }
  std::string root_;
};

TEST_F(StoreTest, ListSkipsReferenceFilesWithBadEscapes) {
  auto store = Store::Open({.root = root_});
  ASSERT_TRUE(store.ok()) << store.error().message();
  std::string hex(64, 'a');
  ASSERT_TRUE(fs::MakeDirs(root_ + "/images/" + hex, 0755).ok());
  ASSERT_TRUE(fs::WriteFileDurably(root_ + "/images/" + hex + "/meta.json", "{}").ok());
  std::string digest = "sha256:" + hex;
  // "docker.io/library/alpine:3@linux/amd64", escaped as the store escapes it, and three names it never
  // writes.
  ASSERT_TRUE(
      fs::WriteFileDurably(root_ + "/refs/docker.io%2Flibrary%2Falpine%3A3%40linux%2Famd64", digest).ok());
  for (const char* bad : {"bad%zz", "bad%4", "bad%"})
    ASSERT_TRUE(fs::WriteFileDurably(root_ + "/refs/" + bad, digest).ok());

  auto images = (*store)->List();  // used to throw std::invalid_argument out of std::stoi
  ASSERT_TRUE(images.ok()) << images.error().message();
  ASSERT_EQ(images->size(), 1u);
  EXPECT_EQ((*images)[0].manifest_digest, digest);
  EXPECT_EQ((*images)[0].references, std::vector<std::string>{"docker.io/library/alpine:3@linux/amd64"});
}

}  // namespace
}  // namespace nfc::image
