#include "init/host/config_drive.h"

#include <gtest/gtest.h>

namespace nfc::init::host {
namespace {

TEST(MetaData, ReadsHostnameAndInstanceId) {
  auto m = ParseMetaData("# NoCloud\ninstance-id: i-123\r\nlocal-hostname: 'node-1.example'\n\nregion: x\n");
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_EQ(m->data.instance_id, "i-123");
  EXPECT_EQ(m->data.hostname, "node-1.example");
  EXPECT_EQ(m->ignored, std::vector<std::string>{"region"});
}

TEST(MetaData, ErrorsNameTheLineAndKey) {
  auto m = ParseMetaData("instance-id: a\nlocal-hostname: bad_name\n");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().message(), "line 2: local-hostname 'bad_name' is not a valid hostname");
  auto n = ParseMetaData("instance-id: a\njust words\n");
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.error().message(), "line 2: want `key: value`");
  EXPECT_FALSE(ParseMetaData("instance-id:\n").ok());
}

TEST(MetaData, Hostnames) {
  EXPECT_TRUE(ValidHostname("n1"));
  EXPECT_TRUE(ValidHostname("a-b.c0"));
  EXPECT_FALSE(ValidHostname(""));
  EXPECT_FALSE(ValidHostname("-a"));
  EXPECT_FALSE(ValidHostname("a..b"));
  EXPECT_FALSE(ValidHostname("a."));
  EXPECT_FALSE(ValidHostname(std::string(64, 'a')));
  EXPECT_FALSE(ValidHostname("a b"));
}

TEST(ConfigDrive, SafeFileNames) {
  EXPECT_TRUE(SafeConfigFileName("client.hcl"));
  EXPECT_TRUE(SafeConfigFileName("ca-cert_1.pem"));
  EXPECT_FALSE(SafeConfigFileName(".hidden"));
  EXPECT_FALSE(SafeConfigFileName("../x"));
  EXPECT_FALSE(SafeConfigFileName("a/b"));
  EXPECT_FALSE(SafeConfigFileName(""));
}

std::string FatHead(size_t label_at, size_t type_at, const std::string& label) {
  std::string h(64 << 10, '\0');
  h.replace(label_at, 11, (label + std::string(11, ' ')).substr(0, 11));
  h.replace(type_at, 8, "FAT16   ");
  h[510] = '\x55';
  h[511] = '\xAA';
  return h;
}

TEST(ConfigDrive, ProbesFatAndIsoLabels) {
  auto fat16 = ProbeFilesystem(FatHead(0x2B, 0x36, "CIDATA"));
  ASSERT_TRUE(fat16);
  EXPECT_EQ(fat16->type, "vfat");
  EXPECT_EQ(fat16->label, "CIDATA");
  auto fat32 = ProbeFilesystem(FatHead(0x47, 0x52, "config-2"));
  ASSERT_TRUE(fat32);
  EXPECT_EQ(fat32->label, "config-2");

  std::string iso(64 << 10, '\0');
  iso[0x8000] = 1;
  iso.replace(0x8001, 5, "CD001");
  iso.replace(0x8000 + 40, 32, "cidata" + std::string(26, ' '));
  auto i = ProbeFilesystem(iso);
  ASSERT_TRUE(i);
  EXPECT_EQ(i->type, "iso9660");
  EXPECT_EQ(i->label, "cidata");

  EXPECT_FALSE(ProbeFilesystem(std::string(64 << 10, '\0')));
  EXPECT_FALSE(ProbeFilesystem("short"));
  std::string no_sig = FatHead(0x2B, 0x36, "CIDATA");
  no_sig[511] = 0;
  EXPECT_FALSE(ProbeFilesystem(no_sig));
}

}  // namespace
}  // namespace nfc::init::host
