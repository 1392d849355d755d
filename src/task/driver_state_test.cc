#include "task/driver_state.h"

#include <gtest/gtest.h>

namespace nfc::task {
namespace {

DriverState Sample() {
  DriverState s;
  s.task_id = "a1/web/0f";
  s.alloc_id = "a1";
  s.task_name = "web";
  s.task_dir = "/var/lib/nfc/tasks/a1.web.x";
  s.control_socket = s.task_dir + "/control.sock";
  s.exit_record = s.task_dir + "/exit.json";
  s.shim = {4242, 987654321ULL};
  s.backend = "qemu";
  s.vcpus = 2;
  s.memory_mib = 512;
  s.image_reference = "localhost:5000/demo:1";
  s.image_digest = "sha256:abc";
  s.image_rootfs = "/var/lib/nfc/images/abc/rootfs.ext4";
  s.started_at_unix_nanos = 1700000000000000000;
  s.network_mode = "group";
  s.netns_path = "/var/run/netns/a1";
  s.tap_name = "nfc0";
  s.address = "172.26.64.5";
  s.config = {{"image", "demo"}, {"vcpus_from", "cpu shares"}};
  return s;
}

TEST(DriverState, RoundTripsEverything) {
  DriverState in = Sample();
  auto out = DriverState::Decode(in.Encode());
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ(out->task_id, in.task_id);
  EXPECT_EQ(out->task_dir, in.task_dir);
  EXPECT_EQ(out->shim.pid, 4242);
  EXPECT_EQ(out->shim.start_time, 987654321ULL);
  EXPECT_EQ(out->memory_mib, 512);
  EXPECT_EQ(out->image_digest, "sha256:abc");
  EXPECT_EQ(out->netns_path, "/var/run/netns/a1");
  EXPECT_EQ(out->config, in.config);
  EXPECT_EQ(out->started_at_unix_nanos, in.started_at_unix_nanos);
}

TEST(DriverState, RecordsTheHostModeLease) {
  DriverState in = Sample();
  in.network_mode = "host";
  in.netns_path = "";
  in.address = "10.229.0.6";
  in.host_lease = "10.229.0.4/30";
  auto out = DriverState::Decode(in.Encode());
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ(out->network_mode, "host");
  EXPECT_EQ(out->tap_name, "nfc0");
  EXPECT_EQ(out->host_lease, "10.229.0.4/30");
  // Group mode has none, and writes none.
  EXPECT_EQ(nlohmann::json::parse(Sample().Encode())["network"].count("host_lease"), 0u);
}

TEST(DriverState, IgnoresUnknownFieldsFromNewerPlugins) {
  auto j = nlohmann::json::parse(Sample().Encode());
  j["something_new"] = {1, 2, 3};
  auto out = DriverState::Decode(j.dump());
  EXPECT_TRUE(out.ok()) << out.error().message();
}

TEST(DriverState, MalformedHandlesGiveClearErrors) {
  struct Case {
    std::string bytes;
    std::string expect;
  };
  auto without = [](const char* field) {
    auto j = nlohmann::json::parse(Sample().Encode());
    j.erase(field);
    return j.dump();
  };
  auto with = [](const char* field, const nlohmann::json& v) {
    auto j = nlohmann::json::parse(Sample().Encode());
    j[field] = v;
    return j.dump();
  };
  std::vector<Case> cases = {
      {"", "no driver state"},
      {"garbage", "not a JSON object"},
      {"[1,2]", "not a JSON object"},
      {without("version"), "no version"},
      {with("version", 9), "version 9"},
      {without("control_socket"), "control_socket"},
      {with("shim", {{"pid", "x"}}), "shim"},
      {with("task_dir", "relative/dir"), "not absolute"},
      {with("shim", {{"pid", 1}, {"start_time", 5}}), "pid 1"},
  };
  for (const auto& c : cases) {
    auto out = DriverState::Decode(c.bytes);
    ASSERT_FALSE(out.ok()) << c.bytes;
    EXPECT_EQ(out.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(out.error().message().find(c.expect), std::string::npos) << out.error().message();
  }
}

TEST(StartRecord, RoundTripsAndRejectsGarbage) {
  StartRecord r{"a1/web/0badf00d", "sha256:abc", ProcessIdentity{4242, 987654321}};
  auto back = StartRecord::Decode(r.Encode());
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->task_id, "a1/web/0badf00d");
  EXPECT_EQ(back->image_digest, "sha256:abc");
  EXPECT_EQ(back->starter.pid, 4242);
  EXPECT_EQ(back->starter.start_time, 987654321u);
  EXPECT_TRUE(back->tap.empty());
  r.netns_path = "/var/run/netns/a1";
  r.tap = "nfc0123456789";
  back = StartRecord::Decode(r.Encode());
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->netns_path, "/var/run/netns/a1");
  EXPECT_EQ(back->tap, "nfc0123456789");
  for (std::string bad :
       {"", "garbage", R"({"version": 2, "task_id": "x"})", R"({"version": 1, "task_id": 5})",
        R"({"version": 1, "task_id": "x", "image_digest": "d"})"}) {
    auto out = StartRecord::Decode(bad);
    ASSERT_FALSE(out.ok()) << bad;
    EXPECT_EQ(out.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(out.error().message().find("start record"), std::string::npos) << out.error().message();
  }
}

}  // namespace
}  // namespace nfc::task
