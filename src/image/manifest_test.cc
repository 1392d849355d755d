#include "image/manifest.h"

#include <gtest/gtest.h>

#include "image/image_config.h"

namespace nfc::image {
namespace {

std::string D(char c) {
  return "sha256:" + std::string(64, c);
}

TEST(ManifestTest, ParsesOciImageManifest) {
  std::string body = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
    "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
                     D('a') + R"(","size":12},
    "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":")" +
                     D('b') + R"(","size":7}]})";
  auto m = ParseManifest(body, "application/vnd.oci.image.manifest.v1+json");
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_EQ(m->kind, ManifestKind::kImage);
  EXPECT_EQ(m->config.digest, D('a'));
  ASSERT_EQ(m->layers.size(), 1u);
  EXPECT_EQ(m->layers[0].size, 7);
  EXPECT_EQ(*LayerCompression(m->layers[0].media_type), "zstd");
}

TEST(ManifestTest, RefusesSchema1ClearlyAndUnknownTypes) {
  auto s1 = ParseManifest(R"({"schemaVersion":1,"name":"x","fsLayers":[]})", "application/json");
  ASSERT_FALSE(s1.ok());
  EXPECT_EQ(s1.error().code(), ErrorCode::kUnimplemented);
  EXPECT_NE(s1.error().message().find("schema 1"), std::string::npos);
  auto unknown = ParseManifest(R"({"schemaVersion":2})", "application/vnd.example.thing+json");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message().find("application/vnd.example.thing+json"), std::string::npos);
  EXPECT_FALSE(ParseManifest("not json", "").ok());
  auto bad_digest = ParseManifest(R"({"mediaType":"application/vnd.oci.image.manifest.v1+json",
    "config":{"digest":"sha256:xyz","size":1},"layers":[]})",
                                  "");
  ASSERT_FALSE(bad_digest.ok());
  EXPECT_NE(bad_digest.error().message().find("sha256:xyz"), std::string::npos);
  EXPECT_FALSE(LayerCompression("application/vnd.oci.image.layer.v1.tar+bzip2").ok());
}

// Found by fuzzing (tests/fuzz/corpus/manifest/crash-b84f6dd5...): a schemaVersion that is not a number threw
// json type_error out of ParseManifest (std::terminate in the plugin) instead of being ignored.
TEST(ManifestTest, SchemaVersionOfTheWrongTypeIsNotAnException) {
  std::string body = R"({"schemaVersion":"2","config":{"digest":")" + D('a') + R"(","size":1},"layers":[]})";
  auto m = ParseManifest(body, "application/vnd.oci.image.manifest.v1+json");
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_EQ(m->config.size, 1);
  EXPECT_FALSE(ParseManifest(R"({"schemaVersion":[1]})", "").ok());
}

TEST(ManifestTest, SelectsTheHostPlatformFromAnIndex) {
  std::string body =
      R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json",
    "manifests":[
     {"mediaType":"m","digest":")" +
      D('1') + R"(","size":1,"platform":{"os":"linux","architecture":"arm","variant":"v7"}},
     {"mediaType":"m","digest":")" +
      D('2') + R"(","size":1,"platform":{"os":"linux","architecture":"arm64"}},
     {"mediaType":"m","digest":")" +
      D('3') + R"(","size":1,"platform":{"os":"linux","architecture":"amd64"}},
     {"mediaType":"m","digest":")" +
      D('4') + R"(","size":1,"platform":{"os":"unknown","architecture":"unknown"}}]})";
  auto idx = ParseManifest(body, "");
  ASSERT_TRUE(idx.ok()) << idx.error().message();
  EXPECT_EQ(idx->kind, ManifestKind::kIndex);
  EXPECT_EQ(SelectPlatform(*idx, *ParsePlatform("linux/amd64"))->digest, D('3'));
  EXPECT_EQ(SelectPlatform(*idx, *ParsePlatform("linux/arm64/v8"))->digest, D('2'));
  EXPECT_EQ(SelectPlatform(*idx, *ParsePlatform("linux/arm/v7"))->digest, D('1'));
  auto none = SelectPlatform(*idx, *ParsePlatform("linux/s390x"));
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message().find("linux/amd64"), std::string::npos) << none.error().message();
  EXPECT_FALSE(ParsePlatform("linux").ok());
}

TEST(ImageConfigTest, ParsesAndRoundTrips) {
  auto c = ParseImageConfig(R"({"architecture":"amd64","os":"linux","config":{"Entrypoint":["/bin/sh","-c"],
    "Cmd":["echo hi"],"Env":["PATH=/bin","A=b"],"WorkingDir":"/srv","User":"1000:1000",
    "ExposedPorts":{"8080/tcp":{},"53/udp":{}},"Labels":{"k":"v"},"StopSignal":"SIGQUIT"},"rootfs":{}})");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->entrypoint, (std::vector<std::string>{"/bin/sh", "-c"}));
  EXPECT_EQ(c->exposed_ports, (std::vector<std::string>{"53/udp", "8080/tcp"}));
  EXPECT_EQ(c->labels.at("k"), "v");
  auto back = ImageConfigFromJson(ImageConfigToJson(*c));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->cmd, c->cmd);
  EXPECT_EQ(back->env, c->env);
  EXPECT_EQ(back->working_dir, "/srv");
  EXPECT_EQ(back->user, "1000:1000");
  EXPECT_EQ(back->stop_signal, "SIGQUIT");
  EXPECT_EQ(back->architecture, "amd64");
}

}  // namespace
}  // namespace nfc::image
