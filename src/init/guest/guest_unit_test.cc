#include <gtest/gtest.h>

#include "init/guest/identity.h"
#include "init/guest/launcher.h"
#include "init/guest/log_buffer.h"

namespace nfc::init::guest {
namespace {

const char* kPasswd =
    "root:x:0:0:root:/root:/bin/sh\n"
    "# comment\n"
    "app:x:1000:1000:App:/home/app:/bin/sh\n"
    "broken line\n"
    "nobody:x:65534:65534::/nonexistent:/bin/false\n";
const char* kGroup =
    "root:x:0:\n"
    "app:x:1000:\n"
    "audio:x:29:app,other\n"
    "video:x:44:other\n"
    "staff:x:50:app\n";

TEST(Identity, ResolvesNamesNumbersAndSupplementaryGroups) {
  auto app = ResolveIdentity("app", kPasswd, kGroup, {});
  ASSERT_TRUE(app.ok()) << app.error().ToString();
  EXPECT_EQ(app->uid, 1000u);
  EXPECT_EQ(app->gid, 1000u);
  EXPECT_EQ(app->home, "/home/app");
  EXPECT_EQ(app->groups, (std::vector<gid_t>{29, 50, 1000}));

  auto by_number = ResolveIdentity("1000", kPasswd, kGroup, {"video"});
  ASSERT_TRUE(by_number.ok());
  EXPECT_EQ(by_number->name, "app");
  EXPECT_EQ(by_number->groups, (std::vector<gid_t>{29, 44, 50, 1000}));

  auto with_group = ResolveIdentity("app:video", kPasswd, kGroup, {});
  ASSERT_TRUE(with_group.ok());
  EXPECT_EQ(with_group->gid, 44u);
  EXPECT_EQ(with_group->groups, (std::vector<gid_t>{44}));  // forced group: no /etc/group membership

  auto unknown_uid = ResolveIdentity("4242:4343", "", "", {});
  ASSERT_TRUE(unknown_uid.ok());
  EXPECT_EQ(unknown_uid->uid, 4242u);
  EXPECT_EQ(unknown_uid->gid, 4343u);
  EXPECT_EQ(unknown_uid->home, "/");

  auto root = ResolveIdentity("", kPasswd, kGroup, {});
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->uid, 0u);
  EXPECT_EQ(root->home, "/root");

  auto missing = ResolveIdentity("ghost", kPasswd, kGroup, {});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().ToString().find("no user \"ghost\""), std::string::npos);
  auto bad_group = ResolveIdentity("app:nogroup", kPasswd, kGroup, {});
  ASSERT_FALSE(bad_group.ok());
  EXPECT_NE(bad_group.error().ToString().find("group \"nogroup\" not found"), std::string::npos);
}

TEST(LogBuffer, BoundsAcksAndResumes) {
  LogBuffer b(10);
  EXPECT_EQ(b.Append("hello world"), 10u);  // only what fits
  EXPECT_EQ(b.free_space(), 0u);
  EXPECT_EQ(b.Read(0, 100), "hello worl");
  EXPECT_EQ(b.Read(6, 2), "wo");
  b.Ack(6);
  EXPECT_EQ(b.start(), 6u);
  EXPECT_EQ(b.free_space(), 6u);
  EXPECT_EQ(b.Read(0, 100), "worl");  // below start: clamped
  EXPECT_EQ(b.Append("d!"), 2u);
  EXPECT_EQ(b.end(), 12u);
  EXPECT_EQ(b.Read(10, 100), "d!");
  b.Ack(100);  // beyond end: clamped
  EXPECT_EQ(b.start(), 12u);
  EXPECT_EQ(b.Read(12, 1), "");
}

TEST(Launcher, LookPathUsesTheImagePath) {
  auto sh = LookPath("sh", {"PATH=/nonexistent:/bin"});
  ASSERT_TRUE(sh.ok());
  EXPECT_EQ(*sh, "/bin/sh");
  auto missing = LookPath("definitely-not-a-command", {"PATH=/bin"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(ExitCodeForLaunchError(missing.error()), 127);
  auto dir = LookPath("/tmp", {});
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(ExitCodeForLaunchError(dir.error()), 126);
}

TEST(Launcher, FinalizeEnvAddsDefaultsWithoutOverriding) {
  Identity id;
  id.home = "/home/app";
  auto env = FinalizeEnv({"PATH=/x", "A=1"}, id, "web", true);
  EXPECT_EQ(env,
            (std::vector<std::string>{"PATH=/x", "A=1", "HOME=/home/app", "HOSTNAME=web", "TERM=xterm"}));
}

}  // namespace
}  // namespace nfc::init::guest
