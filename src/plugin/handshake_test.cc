#include "plugin/handshake.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>

#include "temp_dir.h"

namespace nfc::plugin {
namespace {

EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(HandshakeTest, LineHasGoPluginShape) {
  EXPECT_EQ(HandshakeLine("/tmp/plugin42"), "1|2|unix|/tmp/plugin42|grpc|\n");
}

TEST(HandshakeTest, CookiePresenceSelectsPluginMode) {
  EXPECT_FALSE(LaunchedByPluginHost(FakeEnv({})));
  EXPECT_TRUE(LaunchedByPluginHost(FakeEnv({{"NOMAD_PLUGIN_MAGIC_COOKIE", "wrong"}})));
}

TEST(HandshakeTest, WrongCookieIsRefusedWithExplanation) {
  Status s = CheckHandshakeEnvironment(FakeEnv({{"NOMAD_PLUGIN_MAGIC_COOKIE", "wrong"}}));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("plugin_dir"), std::string::npos) << s.error().message();
}

TEST(HandshakeTest, ProtocolVersionsMustOfferTwo) {
  const std::string cookie(kMagicCookieValue);
  EXPECT_TRUE(CheckHandshakeEnvironment(FakeEnv({{"NOMAD_PLUGIN_MAGIC_COOKIE", cookie}})).ok());
  EXPECT_TRUE(CheckHandshakeEnvironment(
                  FakeEnv({{"NOMAD_PLUGIN_MAGIC_COOKIE", cookie}, {"PLUGIN_PROTOCOL_VERSIONS", "1, 2"}}))
                  .ok());
  Status s = CheckHandshakeEnvironment(
      FakeEnv({{"NOMAD_PLUGIN_MAGIC_COOKIE", cookie}, {"PLUGIN_PROTOCOL_VERSIONS", "1,3,12"}}));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("1,3,12"), std::string::npos) << s.error().message();
}

TEST(HandshakeTest, SocketDirPrecedence) {
  test_support::TempDir temp("handshake");
  const std::string& dir = temp.path();
  Result<std::string> a =
      ChooseSocketPath(FakeEnv({{"PLUGIN_UNIX_SOCKET_DIR", dir + "/"}, {"TMPDIR", "/nope"}}));
  ASSERT_TRUE(a.ok()) << a.error().message();
  EXPECT_EQ(a->rfind(dir + "/plugin", 0), 0u) << *a;
  Result<std::string> b = ChooseSocketPath(FakeEnv({{"TMPDIR", dir}}));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->rfind(dir + "/plugin", 0), 0u) << *b;
  EXPECT_NE(*a, *b);  // fresh names, so concurrent plugin instances never collide
  Result<std::string> c = ChooseSocketPath(FakeEnv({}));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->rfind("/tmp/plugin", 0), 0u) << *c;
}

TEST(HandshakeTest, OverlongSocketDirIsAnError) {
  Result<std::string> r =
      ChooseSocketPath(FakeEnv({{"PLUGIN_UNIX_SOCKET_DIR", "/" + std::string(200, 'x')}}));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("PLUGIN_UNIX_SOCKET_DIR"), std::string::npos);
}

TEST(HandshakeTest, SocketGroupAppliesModeAndGroup) {
  test_support::TempDir dir("handshake");
  const std::string file = dir.Path("sock");
  FILE* f = fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fclose(f);
  ASSERT_TRUE(ApplySocketGroup(FakeEnv({{"PLUGIN_UNIX_SOCKET_GROUP", std::to_string(getgid())}}), file).ok());
  struct stat st;
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_EQ(st.st_gid, getgid());
  Status bad = ApplySocketGroup(FakeEnv({{"PLUGIN_UNIX_SOCKET_GROUP", "no-such-group-nfc"}}), file);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("no-such-group-nfc"), std::string::npos);
}

}  // namespace
}  // namespace nfc::plugin
