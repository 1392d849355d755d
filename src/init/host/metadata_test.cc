#include "init/host/metadata.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "base/fs.h"
#include "init/host/metadata_test_server.h"
#include "temp_dir.h"

namespace nfc::init::host {
namespace {

using testing::LoopbackHttpServer;

std::string Reply(int status, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

std::string Path(const std::string& req) {
  return req.substr(0, req.find(" HTTP/1.1"));
}

const char* kUserData =
    "#nomados-config\n"
    "# comment before the parts\n"
    "--- meta-data\n"
    "local-hostname: md-node-1\n"
    "--- nomados.cmdline\n"
    "nomados.stop_timeout=120\n"
    "--- nomad/cloud.hcl\n"
    "server_join { retry_join = [\"10.0.0.10\"] }\n"
    "--- nomad/ca.pem\n"
    "-----BEGIN CERTIFICATE-----\r\n";

TEST(UserData, PartsOfANomadosConfig) {
  auto b = ParseUserData(kUserData);
  ASSERT_TRUE(b.ok()) << b.error().message();
  ASSERT_TRUE(*b);
  EXPECT_EQ((*b)->meta_data, "local-hostname: md-node-1\n");
  EXPECT_EQ((*b)->cmdline, "nomados.stop_timeout=120\n");
  ASSERT_EQ((*b)->files.size(), 2u);
  EXPECT_EQ((*b)->files[0].first, "cloud.hcl");
  EXPECT_EQ((*b)->files[0].second, "server_join { retry_join = [\"10.0.0.10\"] }\n");
  EXPECT_EQ((*b)->files[1].second, "-----BEGIN CERTIFICATE-----\r\n");
}

TEST(UserData, NotOursOrMalformed) {
  auto cloud_init = ParseUserData("#cloud-config\nhostname: x\n");
  ASSERT_TRUE(cloud_init.ok());
  EXPECT_FALSE(*cloud_init);
  EXPECT_FALSE(*ParseUserData(""));
  auto e = ParseUserData("#nomados-config\n--- nomad/../etc/passwd\nx\n");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message(), "line 2: file name '../etc/passwd' is not [A-Za-z0-9._-] (no leading dot)");
  auto u = ParseUserData("#nomados-config\n--- user-data\n");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().message(),
            "line 2: part 'user-data' is not meta-data, nomados.cmdline or nomad/<file>");
  EXPECT_FALSE(ParseUserData("#nomados-config\n--- meta-data\n--- meta-data\n").ok());
  EXPECT_FALSE(ParseUserData("#nomados-config\n--- nomad/a\n--- nomad/a\n").ok());
  auto before = ParseUserData("#nomados-config\nhostname: x\n");
  ASSERT_FALSE(before.ok());
  EXPECT_EQ(before.error().message(), "line 2: text before the first `--- <part>` line");
}

// User-data written on Windows: CRLF lines mean the same as LF ones.
TEST(UserData, CrlfLines) {
  auto b = ParseUserData("#nomados-config\r\n--- nomados.cmdline\r\nnomados.stop_timeout=9\r\n");
  ASSERT_TRUE(b.ok() && *b) << (b.ok() ? "not ours" : b.error().message());
  CloudConfig c;
  ReadCmdlineText(*(*b)->cmdline, c);
  EXPECT_EQ(c.cmdline_words, std::vector<std::string>{"nomados.stop_timeout=9"});
}

TEST(OpenStackMetaData, UuidAndHostname) {
  auto m =
      ParseOpenStackMetaData(R"({"uuid":"d8e02d56","hostname":"os-node.novalocal","name":"n","meta":{}})");
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_EQ(m->instance_id, "d8e02d56");
  EXPECT_EQ(m->hostname, "os-node.novalocal");
  EXPECT_FALSE(ParseOpenStackMetaData("[1]").ok());
  EXPECT_FALSE(ParseOpenStackMetaData("{").ok());
  auto h = ParseOpenStackMetaData(R"({"hostname":"a_b"})");
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().message(), "hostname 'a_b' is not a valid hostname");
  EXPECT_FALSE(ParseOpenStackMetaData(R"({"uuid":7})").ok());
}

TEST(ImdsToken, OnlyWhatMayGoIntoAHeader) {
  EXPECT_TRUE(ValidImdsToken("AQAEAK_x-y==/+."));
  EXPECT_FALSE(ValidImdsToken(""));
  EXPECT_FALSE(ValidImdsToken("a\r\nX-Injected: 1"));
  EXPECT_FALSE(ValidImdsToken(std::string(1025, 'a')));
}

class MetadataFetch : public ::testing::Test {
 protected:
  MetadataOptions Options(const LoopbackHttpServer& s) {
    MetadataOptions o;
    o.target.address = "127.0.0.1";
    o.target.port = s.port();
    o.target.connect_timeout = std::chrono::milliseconds(300);
    o.target.total_timeout = std::chrono::milliseconds(600);
    o.retry_delay = std::chrono::milliseconds(10);
    o.baked_config = dir_.Path("baked");
    o.merged_config = dir_.Path("merged");
    std::filesystem::create_directories(o.baked_config);
    EXPECT_TRUE(fs::WriteFileDurably(o.baked_config + "/agent.hcl", "datacenter = \"dc1\"\n", 0644).ok());
    return o;
  }
  test_support::TempDir dir_{"metadata"};
};

// IMDSv2: token first, then every GET carries it; user-data parts land where a config drive's would.
TEST_F(MetadataFetch, Ec2TokenFlow) {
  std::vector<std::string> requests;
  LoopbackHttpServer s([&](const std::string& req) {
    requests.push_back(Path(req));
    if (Path(req) == "PUT /latest/api/token") {
      if (req.find("\r\nX-aws-ec2-metadata-token-ttl-seconds: 300\r\n") == std::string::npos)
        return Reply(400, "");
      return Reply(200, "TOKEN-abc==");
    }
    if (req.find("\r\nX-aws-ec2-metadata-token: TOKEN-abc==\r\n") == std::string::npos) return Reply(401, "");
    if (Path(req) == "GET /latest/meta-data/instance-id") return Reply(200, "i-0abc\n");
    if (Path(req) == "GET /latest/meta-data/hostname") return Reply(200, "ip-10-0-0-5.ec2.internal");
    if (Path(req) == "GET /latest/user-data") return Reply(200, kUserData);
    return Reply(404, "");
  });
  auto o = Options(s);
  auto c = FetchMetadata(o);
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->label, "ec2");
  EXPECT_EQ(c->meta.instance_id, "i-0abc");
  EXPECT_EQ(c->meta.hostname, "md-node-1");  // the user-data's meta-data wins over the service's hostname
  EXPECT_EQ(c->cmdline_words, std::vector<std::string>{"nomados.stop_timeout=120"});
  EXPECT_EQ(c->agent_files, (std::vector<std::string>{"cloud.hcl", "ca.pem"}));
  EXPECT_TRUE(c->problems.empty()) << c->problems[0].message();
  EXPECT_EQ(dir_.Entries("merged"), (std::vector<std::string>{"agent.hcl", "ca.pem", "cloud.hcl"}));
  EXPECT_EQ(*fs::ReadFile(o.merged_config + "/ca.pem", 4096), "-----BEGIN CERTIFICATE-----\r\n");
  EXPECT_EQ(requests.front(), "PUT /latest/api/token");
  EXPECT_EQ(requests.size(), 4u);
}

// No IMDSv2 (404 on the token): OpenStack's paths; a missing user_data (404) is no user-data, not an error.
TEST_F(MetadataFetch, OpenStackAfterEc2NotFound) {
  LoopbackHttpServer s([&](const std::string& req) {
    if (Path(req) == "GET /openstack/latest/meta_data.json")
      return Reply(200, R"({"uuid":"u-1","hostname":"os-1"})");
    return Reply(404, "not here");
  });
  auto c = FetchMetadata(Options(s));
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->label, "openstack");
  EXPECT_EQ(c->meta.instance_id, "u-1");
  EXPECT_EQ(c->meta.hostname, "os-1");
  EXPECT_TRUE(c->agent_files.empty());
  EXPECT_FALSE(std::filesystem::exists(dir_.Path("merged")));
}

TEST_F(MetadataFetch, NeitherFlavourIsNotFound) {
  LoopbackHttpServer s([&](const std::string&) { return Reply(404, ""); });
  auto c = FetchMetadata(Options(s));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code(), ErrorCode::kNotFound) << c.error().message();
  EXPECT_EQ(s.requests(), 2);  // one round: the service answered
}

// Nothing listening: bounded rounds, then kUnavailable; the baked config stays (nothing written).
TEST_F(MetadataFetch, NoServiceGivesUpAfterAttempts) {
  MetadataOptions o;
  {
    LoopbackHttpServer s([](const std::string&) { return std::string(); });
    o = Options(s);
  }
  auto t0 = std::chrono::steady_clock::now();
  auto c = FetchMetadata(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code(), ErrorCode::kUnavailable) << c.error().message();
  EXPECT_NE(c.error().message().find("no answer after 3 attempts"), std::string::npos) << c.error().message();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_FALSE(std::filesystem::exists(o.merged_config));
}

TEST_F(MetadataFetch, SilentServiceTimesOut) {
  LoopbackHttpServer s([](const std::string&) { return std::string(LoopbackHttpServer::kHang); });
  auto o = Options(s);
  o.attempts = 1;
  auto c = FetchMetadata(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code(), ErrorCode::kTimeout) << c.error().message();
}

// Bad parts are problems naming the part; good ones still apply.
TEST_F(MetadataFetch, BadUserDataIsReported) {
  LoopbackHttpServer s([&](const std::string& req) {
    if (Path(req) == "PUT /latest/api/token") return Reply(200, "t");
    if (Path(req) == "GET /latest/meta-data/hostname") return Reply(200, "bad_host");
    if (Path(req) == "GET /latest/user-data") return Reply(200, "#!/bin/sh\necho hi\n");
    return Reply(404, "");
  });
  auto c = FetchMetadata(Options(s));
  ASSERT_TRUE(c.ok()) << c.error().message();
  ASSERT_EQ(c->problems.size(), 2u);
  EXPECT_EQ(c->problems[0].message(), "meta-data/hostname 'bad_host' is not a valid hostname");
  EXPECT_EQ(c->problems[1].message(),
            "user-data: does not start with '#nomados-config'; ignored (not cloud-init)");
  EXPECT_TRUE(c->meta.hostname.empty());
}

TEST(MergeCloudOptions, SourceWordsAfterTheKernelsAndHostnamePrecedence) {
  CloudConfig c;
  c.meta.hostname = "from-meta";
  c.cmdline_words = {"nomados.stop_timeout=7"};
  HostOptions current;
  auto m = MergeCloudOptions({"nomados.stop_timeout=30", "nomados.hostname=kernel"}, current, c);
  EXPECT_EQ(m.options.stop_timeout, std::chrono::seconds(7));
  EXPECT_EQ(m.options.hostname, "from-meta");
  c.cmdline_words.push_back("nomados.hostname=from-file");
  EXPECT_EQ(MergeCloudOptions({}, current, c).options.hostname, "from-file");
  CloudConfig none;
  current.hostname = "kept";
  EXPECT_EQ(MergeCloudOptions({"nomados.hostname=x"}, current, none).options.hostname, "kept");
}

}  // namespace
}  // namespace nfc::init::host
