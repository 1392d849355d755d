#include "guest/task_spec.h"

#include <gtest/gtest.h>

namespace nfc::guest {
namespace {

TEST(TaskSpec, RoundTripsThroughJson) {
  TaskSpec s;
  s.task_id = "alloc/web";
  s.image.entrypoint = {"/docker-entrypoint.sh"};
  s.image.cmd = {"nginx", "-g", "daemon off;"};
  s.image.env = {"PATH=/usr/bin:/bin", "A=1"};
  s.process.env = {{"A", "2"}, {"B", "3"}};
  s.process.user = "nginx";
  s.hostname = "web";
  s.hosts = {{"10.0.0.1", {"gw", "gateway"}}};
  s.dns = DnsConfig{{"10.0.0.1"}, {"svc"}, {"ndots:2"}};
  s.network.interfaces = {{"eth0", "", 1420, {"10.0.0.2/24", "fd00::2/64"}}};
  s.network.routes = {{"default", "10.0.0.1", "eth0", 0}};
  s.network.forwards = {{"127.0.0.1:9001", "169.254.254.1:9001"}};
  s.root.device = "/dev/vda";
  s.scratch.device = "/dev/vdb";
  s.mounts = {{"/dev/vdc", "/data", "ext4", {"rw", "noatime"}}};
  s.devices = {{"/dev/vdd", "/dev/xvdb"}};
  s.rlimits = {{"nofile", 1024, 4096}};
  s.control.unix_socket = "/run/agent.sock";
  s.files.roots = {{"local", "/local", false, "", 0777},
                   {"secrets", "/secrets", false, "1m", 0777},
                   {"alloc", "/alloc", true, "", 0755}};
  s.files.initial_timeout_ms = 5000;

  auto parsed = ParseTaskSpec(TaskSpecToJson(s));
  ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
  EXPECT_EQ(parsed->task_id, "alloc/web");
  EXPECT_EQ(parsed->image.cmd, s.image.cmd);
  EXPECT_EQ(parsed->process.env.at("B"), "3");
  ASSERT_TRUE(parsed->dns.has_value());
  EXPECT_EQ(parsed->dns->options, std::vector<std::string>{"ndots:2"});
  EXPECT_EQ(parsed->network.interfaces.at(0).mtu, 1420u);
  EXPECT_EQ(parsed->network.interfaces.at(0).addresses.at(1), "fd00::2/64");
  ASSERT_EQ(parsed->network.forwards.size(), 1u);
  EXPECT_EQ(parsed->network.forwards[0].listen, "127.0.0.1:9001");
  EXPECT_EQ(parsed->network.forwards[0].target, "169.254.254.1:9001");
  EXPECT_EQ(parsed->mounts.at(0).options.at(1), "noatime");
  ASSERT_EQ(parsed->devices.size(), 1u);
  EXPECT_EQ(parsed->devices[0].target, "/dev/xvdb");
  EXPECT_EQ(parsed->rlimits.at(0).hard, 4096u);
  EXPECT_EQ(parsed->control.unix_socket, "/run/agent.sock");
  ASSERT_EQ(parsed->files.roots.size(), 3u);
  EXPECT_EQ(parsed->files.roots[1].tmpfs_size, "1m");
  EXPECT_TRUE(parsed->files.roots[2].two_way);
  EXPECT_EQ(parsed->files.roots[2].mode, 0755u);
  EXPECT_EQ(parsed->files.initial_timeout_ms, 5000u);
  EXPECT_EQ(TaskSpecToJson(*parsed), TaskSpecToJson(s));
}

TEST(TaskSpec, ErrorsNameTheFieldAndValue) {
  auto unknown = ParseTaskSpec(R"({"version":1,"root":{"device":"/dev/vda"},"process":{"usr":"x"}})");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().ToString(), "process.usr: unknown field");

  auto type = ParseTaskSpec(R"({"version":1,"root":{"device":"/dev/vda"},"process":{"args":["a",3]}})");
  ASSERT_FALSE(type.ok());
  EXPECT_EQ(type.error().ToString(), "process.args[1]: expected a string, got 3");

  auto signal = ParseTaskSpec(R"({"version":1,"root":{"device":"/dev/vda"},"process":{"stop_signal":99}})");
  ASSERT_FALSE(signal.ok());
  EXPECT_EQ(signal.error().ToString(), "process.stop_signal: 99 is larger than 64");

  auto version = ParseTaskSpec(R"({"version":7})");
  ASSERT_FALSE(version.ok());
  EXPECT_NE(version.error().ToString().find("version: 7 is not supported"), std::string::npos);

  auto root = ParseTaskSpec(R"({"version":1})");
  ASSERT_FALSE(root.ok());
  EXPECT_NE(root.error().ToString().find("exactly one of root.device and root.directory"), std::string::npos);

  auto json = ParseTaskSpec("{\"version\":1,");
  ASSERT_FALSE(json.ok());
  EXPECT_NE(json.error().ToString().find("not valid JSON"), std::string::npos);

  auto mount = ParseTaskSpec(
      R"({"version":1,"root":{"device":"/dev/vda"},"mounts":[{"target":"/a/../etc","fstype":"ext4"}]})");
  ASSERT_FALSE(mount.ok());
  EXPECT_NE(mount.error().ToString().find("mounts[0].target: \"/a/../etc\""), std::string::npos);

  auto device = ParseTaskSpec(
      R"({"version":1,"root":{"device":"/dev/vda"},"devices":[{"source":"/etc/shadow","target":"/dev/x"}]})");
  ASSERT_FALSE(device.ok());
  EXPECT_NE(device.error().ToString().find("devices[0].source: \"/etc/shadow\" is not a device path"),
            std::string::npos);
}

TEST(TaskSpec, ForwardsNeedIpv4AndPort) {
  constexpr const char* kBase = R"({"version":1,"root":{"device":"/dev/vda"},"network":{"forwards":[)";
  auto ok = ParseTaskSpec(std::string(kBase) + R"({"listen":"127.0.0.1:53","target":"169.254.254.1:53"}]}})");
  ASSERT_TRUE(ok.ok()) << ok.error().ToString();
  for (const char* bad :
       {"localhost:53", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "1.2.3.400:5", "1.2.3.4:5x"}) {
    auto r = ParseTaskSpec(std::string(kBase) + R"({"listen":"127.0.0.1:53","target":")" + bad + R"("}]}})");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().ToString(),
              std::string("network.forwards[0].target: \"") + bad + "\" is not an IPv4 address and port");
  }
  auto unknown = ParseTaskSpec(std::string(kBase) + R"({"listen":"127.0.0.1:53","proto":"tcp"}]}})");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().ToString(), "network.forwards[0].proto: unknown field");
}

TEST(TaskSpec, ANumberPastDoubleIsAnErrorNotAnException) {
  // Found by the task_spec fuzz target: nlohmann reports 1e400 as out_of_range, not parse_error, and it left
  // ParseTaskSpec as an exception (nomad-init, PID 1, aborted).
  for (const char* text : {R"({"version": 1e400})", "1e400", R"({"mem_size_mib": -1e999})"}) {
    auto spec = ParseTaskSpec(text);
    ASSERT_FALSE(spec.ok()) << text;
    EXPECT_EQ(spec.error().code(), ErrorCode::kInvalidArgument) << text;
  }
}

TEST(TaskSpec, FileRootsAreCheckedByName) {
  auto parse = [](const std::string& roots) {
    return ParseTaskSpec(R"({"version":1,"root":{"device":"/dev/vda"},"files":{"roots":)" + roots + "}}");
  };
  auto bad_path = parse(R"([{"name":"local","path":"local"}])");
  ASSERT_FALSE(bad_path.ok());
  EXPECT_EQ(bad_path.error().ToString(), "files.roots[0].path: \"local\" is not an absolute path below /");
  auto root_path = parse(R"([{"name":"local","path":"/"}])");
  EXPECT_FALSE(root_path.ok());
  auto twice = parse(R"([{"name":"local","path":"/a"},{"name":"local","path":"/b"}])");
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().ToString(), "files.roots[1].name: \"local\" repeats");
  auto bad_name = parse(R"([{"name":"Local/x","path":"/a"}])");
  ASSERT_FALSE(bad_name.ok());
  EXPECT_EQ(bad_name.error().ToString(), "files.roots[0].name: \"Local/x\" is not a root name");
  auto mode = parse(R"([{"name":"a","path":"/a","mode":65536}])");
  ASSERT_FALSE(mode.ok());
  EXPECT_NE(mode.error().ToString().find("files.roots[0].mode"), std::string::npos)
      << mode.error().ToString();
  EXPECT_TRUE(parse(R"([{"name":"alloc","path":"/alloc","two_way":true}])").ok());
}

TEST(TaskSpec, ArgvFollowsOciOverrideRules) {
  TaskSpec s;
  s.image.entrypoint = {"/entry"};
  s.image.cmd = {"default"};
  EXPECT_EQ(*ResolveArgv(s), (std::vector<std::string>{"/entry", "default"}));
  s.process.args = std::vector<std::string>{"x", "y"};
  EXPECT_EQ(*ResolveArgv(s), (std::vector<std::string>{"/entry", "x", "y"}));
  s.process.entrypoint = std::vector<std::string>{"/bin/sh"};
  EXPECT_EQ(*ResolveArgv(s), (std::vector<std::string>{"/bin/sh", "x", "y"}));
  s.process.args.reset();
  EXPECT_EQ(*ResolveArgv(s),
            (std::vector<std::string>{"/bin/sh"}));  // image cmd dropped with a new entrypoint
  TaskSpec empty;
  EXPECT_FALSE(ResolveArgv(empty).ok());
}

TEST(TaskSpec, EnvMergeReplacesInPlaceAndAppendsInNameOrder) {
  TaskSpec s;
  s.image.env = {"PATH=/bin", "A=1", "C=3"};
  s.process.env = {{"Z", "26"}, {"A", "one"}, {"B", "2"}};
  EXPECT_EQ(ResolveEnv(s), (std::vector<std::string>{"PATH=/bin", "A=one", "C=3", "B=2", "Z=26"}));
}

}  // namespace
}  // namespace nfc::guest
