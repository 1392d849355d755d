#include "task/sidecar.h"

#include <gtest/gtest.h>

#include "shim/shim_config.h"

namespace nfc::task {
namespace {

std::vector<std::string> Shim(const SidecarForwards& f) {
  std::vector<std::string> out;
  for (const auto& x : f.shim) out.push_back(x.listen.ToString() + ">" + x.target.ToString());
  return out;
}

std::vector<std::string> Guest(const SidecarForwards& f) {
  std::vector<std::string> out;
  for (const auto& x : f.guest) out.push_back(x.listen + ">" + x.target);
  return out;
}

TEST(SidecarForwards, AppPortsInboundUpstreamsOutbound) {
  driver::NomadTask t;
  t.resources.ports = {{"http", 25123, 8080, ""},
                       {"metrics", 9100, 0, ""},              // to 0: the app listens on the value
                       {"again", 25124, 8080, ""},            // the same app port once
                       {"connect-proxy-web", 21000, -1, ""},  // Envoy's public listener
                       {"web-expose-check", 21001, -1, ""}};  // Envoy's again
  t.env = {{"NOMAD_UPSTREAM_ADDR_db", "127.0.0.1:5432"},    {"NOMAD_UPSTREAM_PORT_db", "5432"},
           {"NOMAD_UPSTREAM_PORT_cache", "6379"},            // without an ADDR
           {"NOMAD_UPSTREAM_ADDR_api", "0.0.0.0:7000"},      // bound on every address
           {"NOMAD_UPSTREAM_ADDR_clash", "127.0.0.1:8080"},  // the app's own port: not relayed
           {"NOMAD_UPSTREAM_ADDR_bad", "db.service:5432"},  {"OTHER", "127.0.0.1:1"}};
  SidecarForwards f = SidecarForwardsFor(t);
  EXPECT_EQ(Shim(f), (std::vector<std::string>{
                         "127.0.0.1:8080>169.254.254.2:8080", "127.0.0.1:9100>169.254.254.2:9100",
                         "169.254.254.1:7000>127.0.0.1:7000", "169.254.254.1:6379>127.0.0.1:6379",
                         "169.254.254.1:5432>127.0.0.1:5432"}));
  EXPECT_EQ(Guest(f), (std::vector<std::string>{"127.0.0.1:7000>169.254.254.1:7000",
                                                "127.0.0.1:6379>169.254.254.1:6379",
                                                "127.0.0.1:5432>169.254.254.1:5432"}));
  for (const auto& x : f.shim) EXPECT_TRUE(x.tcp && x.udp);
  EXPECT_EQ(f.netns_ports, (std::vector<uint16_t>{21000, 21001}));
}

TEST(SidecarForwards, NothingWithoutPortsOrUpstreams) {
  driver::NomadTask t;
  t.env = {{"NOMAD_PORT_http", "8080"}};
  SidecarForwards f = SidecarForwardsFor(t);
  EXPECT_TRUE(f.shim.empty());
  EXPECT_TRUE(f.guest.empty());
  EXPECT_TRUE(f.netns_ports.empty());
}

// The shim learns its relays from shim.json: they survive the trip, and a bad endpoint is refused by name.
TEST(SidecarForwards, ShimConfigCarriesTheRelays) {
  shim::ShimConfig c;
  c.task_id = "t";
  c.task_dir = "/tmp/t";
  c.vm.id = "vm";
  c.vm.state_dir = "/tmp/t";
  c.vm.kernel_path = "/k";
  c.stdout_path = c.stderr_path = "/dev/null";
  c.relays = {{{"127.0.0.1", 8080}, {"169.254.254.2", 8080}, true, false}};
  auto back = shim::ShimConfig::FromJson(c.ToJson());
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  ASSERT_EQ(back->relays.size(), 1u);
  EXPECT_EQ(back->relays[0].listen.ToString(), "127.0.0.1:8080");
  EXPECT_EQ(back->relays[0].target.ToString(), "169.254.254.2:8080");
  EXPECT_TRUE(back->relays[0].tcp);
  EXPECT_FALSE(back->relays[0].udp);
  std::string json = c.ToJson();
  json.replace(json.find("169.254.254.2:8080"), 18, "169.254.254.2:80x0");
  auto bad = shim::ShimConfig::FromJson(json);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().ToString().find("'169.254.254.2:80x0'"), std::string::npos) << bad.error().ToString();
}

}  // namespace
}  // namespace nfc::task
