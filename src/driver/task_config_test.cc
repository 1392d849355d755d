#include "driver/task_config.h"

#include <gtest/gtest.h>

#include "driver/test_util.h"

namespace nfc::driver {
namespace {

CtyValue Obj(CtyValue::Map entries) {
  return CtyValue::MakeMap(std::move(entries));
}
CtyValue Str(std::string s) {
  return CtyValue::String(std::move(s));
}
CtyValue List(CtyValue::List items) {
  return CtyValue::MakeList(std::move(items));
}

std::string ErrorOf(const CtyValue& v) {
  Result<TaskConfig> r = DecodeTaskConfig(v);
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.error().message();
}

TEST(TaskConfigTest, VcpuCountUnsetIsNotOne) {
  // Unset means "size from Nomad's resources"; an explicit 1 must win over `resources { cores = 4 }`.
  Result<TaskConfig> unset = DecodeTaskConfig(Obj({{"image", Str("a")}, {"vcpu_count", CtyValue()}}));
  ASSERT_TRUE(unset.ok()) << unset.error().message();
  EXPECT_FALSE(unset->vcpu_count.has_value());
  Result<TaskConfig> one = DecodeTaskConfig(Obj({{"image", Str("a")}, {"vcpu_count", CtyValue::Int(1)}}));
  ASSERT_TRUE(one.ok()) << one.error().message();
  EXPECT_EQ(one->vcpu_count, 1);
}

TEST(TaskConfigTest, SeedExampleVerbatim) {
  Result<TaskConfig> r = DecodeTaskConfig(Obj({
      {"image", Str("ubuntu:20.04")},
      {"vpu_count", CtyValue::Int(1)},
      {"mem_size", CtyValue::Int(512)},
      {"command", Str("/bin/bash")},
      {"args", Str("-c 'echo Hello from Firecracker VM && sleep 30'")},
      {"env", List({Str("ENV_VAR=value"), Str("ANOTHER_VAR=value2")})},
      {"force_pull", CtyValue::Bool(false)},
      {"vcpu_count", CtyValue()},
      {"auth", CtyValue()},
  }));
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->image, "ubuntu:20.04");
  EXPECT_EQ(r->vcpu_count, 1);  // the seed's vpu_count
  EXPECT_EQ(r->mem_size_mib, 512);
  EXPECT_EQ(r->command, "/bin/bash");
  EXPECT_EQ(r->args, (std::vector<std::string>{"-c", "echo Hello from Firecracker VM && sleep 30"}));
  EXPECT_EQ(r->env, (std::vector<std::pair<std::string, std::string>>{{"ENV_VAR", "value"},
                                                                      {"ANOTHER_VAR", "value2"}}));
}

TEST(TaskConfigTest, ReferenceWorkedExampleBytes) {
  // Reference 4.3 (mem_size 512, vcpu_count 2, env as map, args as list).
  Result<TaskConfig> r = DecodeTaskConfigMsgpack(
      testing::Hex("86 a4 61 72 67 73 92 a5 68 65 6c 6c 6f a5 77 6f 72 6c 64 a7 63 6f 6d 6d 61 6e 64"
                   "a9 2f 62 69 6e 2f 65 63 68 6f a3 65 6e 76 81 a3 46 4f 4f a3 62 61 72"
                   "a5 69 6d 61 67 65 ab 61 6c 70 69 6e 65 2e 65 78 74 34 a8 6d 65 6d 5f 73 69 7a 65 cd 02 00"
                   "aa 76 63 70 75 5f 63 6f 75 6e 74 02"));
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->vcpu_count, 2);
  EXPECT_EQ(r->mem_size_mib, 512);
  EXPECT_EQ(r->args, (std::vector<std::string>{"hello", "world"}));
  EXPECT_EQ(r->env, (std::vector<std::pair<std::string, std::string>>{{"FOO", "bar"}}));
}

TEST(TaskConfigTest, ModernForms) {
  Result<TaskConfig> r = DecodeTaskConfig(Obj({
      {"image", Str("registry.local:5000/app@sha256:abc")},
      {"vcpu_count", CtyValue::String("2")},  // decimal text, as cty may send numbers
      {"entrypoint", List({Str("/bin/sh"), Str("-c")})},
      {"args", List({Str("echo hi"), CtyValue::Int(3)})},
      {"env", List({Obj({{"A", Str("1")}}), Obj({{"B", CtyValue::Int(2)}})})},  // block syntax
      {"work_dir", Str("/srv")},
      {"user", Str("1000:1000")},
      {"kernel", Str("/k")},
      {"initrd", Str("/i")},
      {"boot_args", Str("quiet")},
      {"backend", Str("qemu")},
      {"force_pull", CtyValue::Bool(true)},
      {"image_pull_timeout", Str("15m")},
      {"auth",
       Obj({{"username", Str("u")}, {"password", Str("p")}, {"server_address", Str("registry.local")}})},
  }));
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->vcpu_count, 2);
  EXPECT_FALSE(r->mem_size_mib.has_value());
  EXPECT_EQ(r->entrypoint, (std::vector<std::string>{"/bin/sh", "-c"}));
  EXPECT_EQ(r->args, (std::vector<std::string>{"echo hi", "3"}));
  EXPECT_EQ(r->env, (std::vector<std::pair<std::string, std::string>>{{"A", "1"}, {"B", "2"}}));
  EXPECT_EQ(r->backend, Backend::kQemu);
  EXPECT_TRUE(r->force_pull);
  EXPECT_EQ(r->image_pull_timeout, std::chrono::minutes(15));
  ASSERT_TRUE(r->auth.has_value());
  EXPECT_EQ(r->auth->server_address, "registry.local");
}

TEST(TaskConfigTest, ImagePullTimeoutIsABoundedDuration) {
  std::string e = ErrorOf(Obj({{"image", Str("a")}, {"image_pull_timeout", Str("soon")}}));
  EXPECT_NE(e.find("\"image_pull_timeout\" = \"soon\""), std::string::npos) << e;
  e = ErrorOf(Obj({{"image", Str("a")}, {"image_pull_timeout", Str("0s")}}));
  EXPECT_NE(e.find("from 1s to 24h"), std::string::npos) << e;
  Result<TaskConfig> unset = DecodeTaskConfig(Obj({{"image", Str("a")}}));
  ASSERT_TRUE(unset.ok());
  EXPECT_FALSE(unset->image_pull_timeout.has_value());
}

TEST(TaskConfigTest, SizesTakeUnitsAndHaveAFloor) {
  Result<TaskConfig> r = DecodeTaskConfig(
      Obj({{"image", Str("a")}, {"volume_size", Str("4GiB")}, {"task_dir_max_size", Str("64MiB")}}));
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->volume_size_bytes, uint64_t{4} << 30);
  EXPECT_EQ(r->task_dir_max_bytes, uint64_t{64} << 20);
  std::string e = ErrorOf(Obj({{"image", Str("a")}, {"volume_size", Str("1MiB")}}));
  EXPECT_NE(e.find("\"volume_size\" = \"1MiB\""), std::string::npos) << e;
  EXPECT_NE(e.find("at least 16MiB"), std::string::npos) << e;
  e = ErrorOf(Obj({{"image", Str("a")}, {"volume_size", Str("big")}}));
  EXPECT_NE(e.find("\"volume_size\" = \"big\""), std::string::npos) << e;
}

TEST(TaskConfigTest, ErrorsNameOptionAndValue) {
  std::string e = ErrorOf(Obj({{"image", CtyValue()}}));
  EXPECT_NE(e.find("\"image\""), std::string::npos) << e;
  e = ErrorOf(Obj({{"image", Str("a")}, {"vcpu_count", CtyValue::Float(1.5)}}));
  EXPECT_NE(e.find("\"vcpu_count\" = 1.5"), std::string::npos) << e;
  e = ErrorOf(Obj({{"image", Str("a")}, {"vcpu_count", CtyValue::Int(64)}}));
  EXPECT_NE(e.find("from 1 to 32"), std::string::npos) << e;
  e = ErrorOf(Obj({{"image", Str("a")}, {"vcpu_count", CtyValue::Int(2)}, {"vpu_count", CtyValue::Int(4)}}));
  EXPECT_NE(e.find("vpu_count"), std::string::npos) << e;
  e = ErrorOf(Obj({{"image", Str("a")}, {"mem_size", CtyValue::String("0.1")}}));
  EXPECT_NE(e.find("\"mem_size\" = \"0.1\""), std::string::npos) << e;
  e = ErrorOf(Obj({{"image", Str("a")}, {"env", List({Str("NOEQUALS")})}}));
  EXPECT_NE(e.find("NOEQUALS"), std::string::npos) << e;
  e = ErrorOf(Obj({{"image", Str("a")}, {"env", List({Str("=x")})}}));
  EXPECT_NE(e.find("\"env\""), std::string::npos) << e;
  e = ErrorOf(Obj({{"image", Str("a")}, {"args", Str("echo 'unterminated")}}));
  EXPECT_NE(e.find("\"args\""), std::string::npos) << e;
  EXPECT_NE(e.find("unterminated"), std::string::npos) << e;
  e = ErrorOf(Obj({{"image", Str("a")}, {"backend", Str("docker")}}));
  EXPECT_NE(e.find("docker"), std::string::npos) << e;
  e = ErrorOf(Obj({{"image", Str("a")}, {"work_dir", Str("srv")}}));
  EXPECT_NE(e.find("work_dir"), std::string::npos) << e;
  e = ErrorOf(Obj({{"image", Str("a")}, {"auth", Obj({{"username", Str("u")}})}}));
  EXPECT_NE(e.find("auth"), std::string::npos) << e;
  e = ErrorOf(Obj({{"image", Str("a")}, {"auth", Obj({{"token", Str("t")}})}}));
  EXPECT_NE(e.find("token"), std::string::npos) << e;
  e = ErrorOf(Obj({{"image", Str("a")}, {"volumes", List({})}}));
  EXPECT_NE(e.find("unknown option \"volumes\""), std::string::npos) << e;
  e = ErrorOf(Obj({{"image", Str("a b")}}));
  EXPECT_NE(e.find("whitespace"), std::string::npos) << e;
}

// The docker driver's everyday options, with the docker driver's names and forms.
TEST(TaskConfigTest, DockerDriverOptions) {
  Result<TaskConfig> r = DecodeTaskConfig(Obj({
      {"image", Str("a")},
      {"auth_soft_fail", CtyValue::Bool(true)},
      {"hostname", Str("web-1.example")},
      {"dns_servers", List({Str("10.0.0.53"), Str("fd00::53")})},
      {"dns_search_domains", List({Str("svc.example"), Str("example")})},
      {"dns_options", List({Str("ndots:2"), Str("edns0")})},
      {"labels", Obj({{"team", Str("web")}, {"tier", CtyValue::Int(2)}})},
  }));
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_TRUE(r->auth_soft_fail);
  EXPECT_EQ(r->hostname, "web-1.example");
  EXPECT_EQ(r->dns_servers, (std::vector<std::string>{"10.0.0.53", "fd00::53"}));
  EXPECT_EQ(r->dns_search_domains, (std::vector<std::string>{"svc.example", "example"}));
  EXPECT_EQ(r->dns_options, (std::vector<std::string>{"ndots:2", "edns0"}));
  EXPECT_EQ(r->labels, (std::map<std::string, std::string>{{"team", "web"}, {"tier", "2"}}));

  // Block syntax (`labels { ... }`) arrives as a list of maps; unset options keep their defaults.
  Result<TaskConfig> block = DecodeTaskConfig(
      Obj({{"image", Str("a")}, {"labels", List({Obj({{"a", Str("1")}}), Obj({{"b", Str("2")}})})}}));
  ASSERT_TRUE(block.ok()) << block.error().message();
  EXPECT_EQ(block->labels, (std::map<std::string, std::string>{{"a", "1"}, {"b", "2"}}));
  EXPECT_FALSE(block->auth_soft_fail);
  EXPECT_FALSE(block->hostname.has_value());
  EXPECT_TRUE(block->dns_servers.empty());
}

TEST(TaskConfigTest, DockerDriverOptionErrorsNameTheValue) {
  EXPECT_EQ(ErrorOf(Obj({{"image", Str("a")}, {"hostname", Str("web_1")}})),
            "task config option \"hostname\" = \"web_1\": only letters, digits, '-' and '.' are allowed");
  EXPECT_EQ(ErrorOf(Obj({{"image", Str("a")}, {"hostname", Str("-web")}})),
            "task config option \"hostname\" = \"-web\": a label must not begin or end with '-'");
  EXPECT_EQ(
      ErrorOf(Obj({{"image", Str("a")}, {"hostname", Str("a..b")}})),
      "task config option \"hostname\" = \"a..b\": each dot-separated label must have 1 to 63 characters");
  EXPECT_EQ(
      ErrorOf(Obj({{"image", Str("a")}, {"hostname", Str(std::string(65, 'a'))}})),
      "task config option \"hostname\" = \"" + std::string(65, 'a') + "\": expected 1 to 64 characters");
  EXPECT_EQ(ErrorOf(Obj({{"image", Str("a")}, {"dns_servers", List({Str("8.8.8.8"), Str("dns.google")})}})),
            "task config option \"dns_servers\" = \"dns.google\": expected an IPv4 or IPv6 address");
  EXPECT_EQ(ErrorOf(Obj({{"image", Str("a")}, {"dns_options", List({Str("ndots:1 rotate")})}})),
            "task config option \"dns_options\" = \"ndots:1 rotate\": expected one non-empty word without "
            "blanks, '#' or ';'");
  EXPECT_NE(ErrorOf(Obj({{"image", Str("a")}, {"labels", Str("team=web")}})).find("\"labels\""),
            std::string::npos);
  EXPECT_NE(ErrorOf(Obj({{"image", Str("a")}, {"labels", Obj({{"a", List({Str("x")})}})}}))
                .find("value of \"a\" must be a string"),
            std::string::npos);
}

TEST(TaskConfigTest, UnknownValueInPayloadIsAClearError) {
  Result<TaskConfig> r = DecodeTaskConfigMsgpack(testing::Hex("81 a5 69 6d 61 67 65 d4 00 00"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("task config"), std::string::npos);
  EXPECT_NE(r.error().message().find("not known"), std::string::npos);
}

TEST(ShellWordsTest, QuotingRules) {
  EXPECT_EQ(*SplitShellWords("a  b\tc"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(*SplitShellWords("-c 'echo $HOME && x'"), (std::vector<std::string>{"-c", "echo $HOME && x"}));
  EXPECT_EQ(*SplitShellWords("\"a \\\"b\\\" \\n\""), (std::vector<std::string>{"a \"b\" \\n"}));
  EXPECT_EQ(*SplitShellWords("a\\ b c''d \"\""), (std::vector<std::string>{"a b", "cd", ""}));
  EXPECT_TRUE(SplitShellWords("   ")->empty());
  EXPECT_FALSE(SplitShellWords("'open").ok());
  EXPECT_FALSE(SplitShellWords("\"open").ok());
  EXPECT_FALSE(SplitShellWords("trailing\\").ok());
}

}  // namespace
}  // namespace nfc::driver
