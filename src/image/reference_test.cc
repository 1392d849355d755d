#include "image/reference.h"

#include <gtest/gtest.h>

namespace nfc::image {
namespace {

struct Case {
  const char* in;
  const char* registry;
  const char* repository;
  const char* tag;
  const char* digest;
};

TEST(ReferenceTest, ParsesTheFormsDockerUsersWrite) {
  const std::string d = "sha256:" + std::string(64, 'a');
  const Case cases[] = {
      {"alpine", "docker.io", "library/alpine", "latest", ""},
      {"library/alpine:3", "docker.io", "library/alpine", "3", ""},
      {"user/app:v1.2-rc_3", "docker.io", "user/app", "v1.2-rc_3", ""},
      {"localhost:5000/x", "localhost:5000", "x", "latest", ""},
      {"localhost/x/y:t", "localhost", "x/y", "t", ""},
      {"ghcr.io/o/r:1", "ghcr.io", "o/r", "1", ""},
      {"index.docker.io/library/busybox", "docker.io", "library/busybox", "latest", ""},
      {"127.0.0.1:5443/a.b/c__d/e-f", "127.0.0.1:5443", "a.b/c__d/e-f", "latest", ""},
      {"[::1]:5000/img:tag", "[::1]:5000", "img", "tag", ""},
  };
  for (const auto& c : cases) {
    auto r = ParseReference(c.in);
    ASSERT_TRUE(r.ok()) << c.in << ": " << r.error().message();
    EXPECT_EQ(r->registry, c.registry) << c.in;
    EXPECT_EQ(r->repository, c.repository) << c.in;
    EXPECT_EQ(r->tag, c.tag) << c.in;
    EXPECT_EQ(r->digest, c.digest) << c.in;
  }
  auto pinned = ParseReference("ghcr.io/o/r@" + d);
  ASSERT_TRUE(pinned.ok());
  EXPECT_EQ(pinned->tag, "");
  EXPECT_EQ(pinned->digest, d);
  EXPECT_EQ(pinned->String(), "ghcr.io/o/r@" + d);
  auto both = ParseReference("localhost:5000/x:1@" + d);
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->tag, "1");
  EXPECT_EQ(both->String(), "localhost:5000/x:1@" + d);
  EXPECT_EQ(ParseReference("alpine")->ApiHost(), "registry-1.docker.io");
  EXPECT_EQ(ParseReference("localhost:5000/x")->ApiHost(), "localhost:5000");
}

TEST(ReferenceTest, RejectsMalformedReferencesNamingTheProblem) {
  const char* bad[] = {"",       "UPPER",        "a//b",    "a/b/",        "-x",   "x:",
                       "x:-tag", "x@sha256:abc", "x@md5:0", "host:port/x", "a..b", "x:t@sha256:zz"};
  for (const char* b : bad) {
    auto r = ParseReference(b);
    EXPECT_FALSE(r.ok()) << b;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(r.error().message().find("image reference"), std::string::npos) << r.error().message();
    }
  }
}

TEST(ReferenceTest, LoopbackHosts) {
  EXPECT_TRUE(IsLoopbackHost("localhost:5000"));
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("127.1.2.3:443"));
  EXPECT_TRUE(IsLoopbackHost("[::1]:5000"));
  EXPECT_FALSE(IsLoopbackHost("localhost.example.com"));
  EXPECT_FALSE(IsLoopbackHost("10.0.0.1:5000"));
  EXPECT_FALSE(IsLoopbackHost("docker.io"));
}

}  // namespace
}  // namespace nfc::image
