#include "driver/spec.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "driver/plugin_config.h"
#include "driver/rpc/spec_proto.h"
#include "driver/task_config.h"
#include "driver/test_util.h"

namespace nfc::driver {
namespace {

namespace hclspec = hashicorp::nomad::plugins::shared::hclspec;

// Reference 3.2: the worked example's TaskConfigSchemaResponse, as produced by protoc --encode from Nomad's
// protos.
constexpr std::string_view kWorkedExampleResponse =
    "0a de 01 0a db 01 0a 1c 0a 05 69 6d 61 67 65 12 13 1a 11 0a 05 69 6d 61 67 65 12 06 73 74 72 69"
    "6e 67 18 01 0a 2f 0a 0a 76 63 70 75 5f 63 6f 75 6e 74 12 21 4a 1f 0a 16 1a 14 0a 0a 76 63 70 75"
    "5f 63 6f 75 6e 74 12 06 6e 75 6d 62 65 72 12 05 52 03 0a 01 31 0a 2d 0a 08 6d 65 6d 5f 73 69 7a"
    "65 12 21 4a 1f 0a 14 1a 12 0a 08 6d 65 6d 5f 73 69 7a 65 12 06 6e 75 6d 62 65 72 12 07 52 05 0a"
    "03 31 32 38 0a 1e 0a 07 63 6f 6d 6d 61 6e 64 12 13 1a 11 0a 07 63 6f 6d 6d 61 6e 64 12 06 73 74"
    "72 69 6e 67 0a 1e 0a 04 61 72 67 73 12 16 1a 14 0a 04 61 72 67 73 12 0c 6c 69 73 74 28 73 74 72"
    "69 6e 67 29 0a 1b 0a 03 65 6e 76 12 14 1a 12 0a 03 65 6e 76 12 0b 6d 61 70 28 73 74 72 69 6e 67"
    "29";

TEST(SpecTest, BuildersReproduceTheReferenceWireBytes) {
  using namespace spec;
  Node node = Object({
      {"image", Attr("image", "string", true)},
      {"vcpu_count", AttrWithDefault("vcpu_count", "number", NumberLiteral(1))},
      {"mem_size", AttrWithDefault("mem_size", "number", NumberLiteral(128))},
      {"command", Attr("command", "string")},
      {"args", Attr("args", "list(string)")},
      {"env", Attr("env", "map(string)")},
  });
  hclspec::Spec built;
  rpc::SpecToProto(node, &built);

  // Field 1 of TaskConfigSchemaResponse is the Spec; parse it out of the reference bytes with our own protos.
  std::string response = testing::Hex(kWorkedExampleResponse);
  ASSERT_EQ(response.size(), 225u);
  ASSERT_EQ(static_cast<unsigned char>(response[0]), 0x0a);
  hclspec::Spec expected;
  ASSERT_TRUE(expected.ParseFromString(response.substr(3)));
  std::string diff;
  google::protobuf::util::MessageDifferencer differ;
  differ.ReportDifferencesToString(&diff);
  EXPECT_TRUE(differ.Compare(expected, built)) << diff;
}

TEST(SpecTest, StringLiteralEscapesQuotesAndTemplates) {
  EXPECT_EQ(spec::StringLiteral("plain").literal, "\"plain\"");
  EXPECT_EQ(spec::StringLiteral("a\"b\\c").literal, "\"a\\\"b\\\\c\"");
  EXPECT_EQ(spec::StringLiteral("${x} %{y} $z").literal, "\"$${x} %%{y} $z\"");
  EXPECT_EQ(spec::NumberLiteral(128).literal, "128");
  EXPECT_EQ(spec::BoolLiteral(false).literal, "false");
}

TEST(SpecTest, BlocksConvert) {
  using namespace spec;
  hclspec::Spec out;
  rpc::SpecToProto(Object({{"auth", Block("auth", false, Object({{"u", Attr("u", "string")}}))},
                           {"labels", BlockAttrs("labels", "string")},
                           {"ports", BlockList("port", Attr("p", "number"), 1, 3)},
                           {"set", BlockSet("s", Attr("x", "string"))},
                           {"map", BlockMap("m", {"a", "b"}, Attr("y", "bool"))},
                           {"tuple", Array({Literal("1"), Literal("\"x\"")})}}),
                   &out);
  const auto& attrs = out.object().attributes();
  EXPECT_EQ(attrs.at("auth").block_value().nested().object().attributes().at("u").attr().type(), "string");
  EXPECT_EQ(attrs.at("labels").block_attrs().type(), "string");
  EXPECT_EQ(attrs.at("ports").block_list().max_items(), 3u);
  EXPECT_EQ(attrs.at("ports").block_list().min_items(), 1u);
  EXPECT_EQ(attrs.at("set").block_set().name(), "s");
  EXPECT_EQ(attrs.at("map").block_map().labels_size(), 2);
  EXPECT_EQ(attrs.at("tuple").array().values(1).literal().value(), "\"x\"");
}

// Every Attr inside a Default must carry its name (hcldec does not imply it there), and every Attr a type.
void CheckSpecRules(const hclspec::Spec& s, const std::string& where) {
  switch (s.block_case()) {
    case hclspec::Spec::kObject:
      ASSERT_FALSE(s.object().attributes().empty()) << where;
      for (const auto& [k, v] : s.object().attributes()) CheckSpecRules(v, where + "." + k);
      break;
    case hclspec::Spec::kAttr:
      EXPECT_FALSE(s.attr().type().empty()) << where;
      break;
    case hclspec::Spec::kDefault:
      ASSERT_EQ(s.default_().primary().block_case(), hclspec::Spec::kAttr) << where;
      EXPECT_FALSE(s.default_().primary().attr().name().empty()) << where;
      EXPECT_FALSE(s.default_().primary().attr().required()) << where;
      EXPECT_EQ(s.default_().default_().block_case(), hclspec::Spec::kLiteral) << where;
      break;
    case hclspec::Spec::kBlockValue:
      CheckSpecRules(s.block_value().nested(), where);
      break;
    case hclspec::Spec::BLOCK_NOT_SET:
      ADD_FAILURE() << where << ": empty spec";
      break;
    default:
      break;
  }
}

TEST(SpecTest, OurSchemasFollowTheRules) {
  hclspec::Spec plugin, task;
  rpc::SpecToProto(PluginConfigSpec(), &plugin);
  rpc::SpecToProto(TaskConfigSpec(), &task);
  ASSERT_EQ(plugin.block_case(), hclspec::Spec::kObject);
  ASSERT_EQ(task.block_case(), hclspec::Spec::kObject);
  CheckSpecRules(plugin, "plugin");
  CheckSpecRules(task, "task");
  // An empty plugin block must work: nothing in the agent's schema may be required.
  for (const auto& [k, v] : plugin.object().attributes()) {
    if (v.block_case() == hclspec::Spec::kAttr) {
      EXPECT_FALSE(v.attr().required()) << k;
    }
  }
  EXPECT_TRUE(task.object().attributes().at("image").attr().required());
}

}  // namespace
}  // namespace nfc::driver
