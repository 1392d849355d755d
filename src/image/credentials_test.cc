// CredentialsFromDockerConfig: config.json's "auths", helpers and the inputs the docker_config fuzz target
// found that broke it.
#include "image/credentials.h"

#include <gtest/gtest.h>

namespace nfc::image {
namespace {

Result<std::optional<RegistryAuth>> NoHelper(const std::string& helper, const std::string&) {
  return Error(ErrorCode::kInternal, "no helper may run here: " + helper);
}

TEST(DockerConfig, AuthIsBase64OfUserColonPassword) {
  // "dXNlcjpwYXNz" is base64("user:pass").
  auto got =
      CredentialsFromDockerConfig(R"({"auths":{"ghcr.io":{"auth":"dXNlcjpwYXNz"}}})", "ghcr.io", NoHelper);
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->username, "user");
  EXPECT_EQ((*got)->password, "pass");
}

TEST(DockerConfig, AllPaddingIsAClearErrorNamingTheEntry) {
  // Found by fuzzing: "====" decodes to three bytes with four padding characters; the length underflowed.
  for (const char* auth : {"====", "=", "A===", "AA=="}) {
    std::string text = std::string(R"({"auths":{"ghcr.io":{"auth":")") + auth + R"("}}})";
    auto got = CredentialsFromDockerConfig(text, "ghcr.io", NoHelper);
    ASSERT_FALSE(got.ok()) << auth;
    EXPECT_NE(got.error().message().find("auths[\"ghcr.io\"].auth"), std::string::npos)
        << got.error().ToString();
  }
}

TEST(DockerConfig, AHelperNameWithASlashIsRefusedBeforeAnythingRuns) {
  auto got = CredentialsFromDockerConfig(R"({"credsStore":"../../bin/sh"})", "ghcr.io", NoHelper);
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.error().message().find("credsStore"), std::string::npos) << got.error().ToString();
  EXPECT_NE(got.error().message().find("../../bin/sh"), std::string::npos);
  std::string asked;
  auto named = CredentialsFromDockerConfig(
      R"({"credHelpers":{"ghcr.io":"pass"}})", "ghcr.io",
      [&](const std::string& helper, const std::string& server) -> Result<std::optional<RegistryAuth>> {
        asked = helper + "@" + server;
        return std::optional<RegistryAuth>();
      });
  ASSERT_TRUE(named.ok()) << named.error().ToString();
  EXPECT_EQ(asked, "pass@ghcr.io");
}

TEST(DockerConfig, NotAnObjectAndANumberPastDoubleAreErrors) {
  for (const char* text : {"[]", "1e400", "{\"auths\": 1e999}", ""}) {
    EXPECT_FALSE(CredentialsFromDockerConfig(text, "ghcr.io", NoHelper).ok()) << text;
  }
}

}  // namespace
}  // namespace nfc::image
