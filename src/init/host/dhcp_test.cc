#include "init/host/dhcp.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>

namespace nfc::init::host {
namespace {

in_addr A(const char* s) {
  in_addr a;
  inet_pton(AF_INET, s, &a);
  return a;
}

TEST(Dhcp, RequestRoundTrip) {
  DhcpMessage m;
  m.type = DhcpType::kRequest;
  m.xid = 0xdeadbeef;
  const unsigned char mac[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
  std::memcpy(m.chaddr, mac, 6);
  m.requested_address = A("10.0.2.15");
  m.server_id = A("10.0.2.2");
  m.hostname = "node1";
  auto bytes = EncodeDhcp(m);
  EXPECT_GE(bytes.size(), 300u);
  EXPECT_EQ(bytes[0], 1);
  EXPECT_EQ(bytes[10], 0x80);  // broadcast flag: we cannot receive unicast before we have an address
  auto d = DecodeDhcp(bytes);
  ASSERT_TRUE(d.ok()) << d.error().message();
  EXPECT_EQ(d->type, DhcpType::kRequest);
  EXPECT_EQ(d->xid, 0xdeadbeefu);
  EXPECT_EQ(0, std::memcmp(d->chaddr, mac, 6));
  ASSERT_TRUE(d->requested_address.has_value());
  EXPECT_EQ(d->requested_address->s_addr, A("10.0.2.15").s_addr);
  EXPECT_EQ(d->server_id->s_addr, A("10.0.2.2").s_addr);
  EXPECT_EQ(d->lease.hostname, "node1");
}

TEST(Dhcp, AckCarriesTheLease) {
  DhcpMessage m;
  m.op = 2;
  m.type = DhcpType::kAck;
  m.xid = 7;
  m.yiaddr = A("192.168.7.9");
  m.lease.prefix_len = 20;
  m.lease.server_id = A("192.168.0.1");
  m.lease.routers = {A("192.168.0.1")};
  m.lease.dns = {A("9.9.9.9"), A("1.1.1.1")};
  m.lease.domain = "example.internal";
  m.lease.mtu = 1460;
  m.lease.lease_seconds = 86400;
  m.lease.classless_routes = {{A("0.0.0.0"), 0, A("192.168.0.1")}, {A("10.128.0.0"), 9, A("192.168.0.254")}};
  auto d = DecodeDhcp(EncodeDhcp(m));
  ASSERT_TRUE(d.ok()) << d.error().message();
  const auto& l = d->lease;
  EXPECT_EQ(d->type, DhcpType::kAck);
  EXPECT_EQ(l.address.s_addr, A("192.168.7.9").s_addr);
  EXPECT_EQ(l.prefix_len, 20);
  ASSERT_EQ(l.dns.size(), 2u);
  EXPECT_EQ(l.dns[1].s_addr, A("1.1.1.1").s_addr);
  EXPECT_EQ(l.domain, "example.internal");
  EXPECT_EQ(l.mtu, 1460);
  EXPECT_EQ(l.lease_seconds, 86400u);
  ASSERT_EQ(l.classless_routes.size(), 2u);
  EXPECT_EQ(l.classless_routes[1].prefix_len, 9);
  EXPECT_EQ(l.classless_routes[1].dst.s_addr, A("10.128.0.0").s_addr);
  EXPECT_EQ(l.classless_routes[1].gateway.s_addr, A("192.168.0.254").s_addr);
}

TEST(Dhcp, ListsLongerThanOneOptionGoOutAsRepeatedOptions) {
  // Found by the dhcp fuzz target: a decoded reply with more than 63 DNS servers (repeated option 6) was
  // re-encoded with a one-byte length that wrapped; RFC 3396 splits such data over repeated instances.
  DhcpMessage m;
  m.op = 2;
  m.type = DhcpType::kOffer;
  m.xid = 9;
  for (uint32_t i = 0; i < 100; ++i) m.lease.dns.push_back(in_addr{htonl(0x0a000000 + i)});
  for (uint32_t i = 0; i < 60; ++i)
    m.lease.classless_routes.push_back({in_addr{htonl(0x0a000000 + (i << 8))}, 24, A("10.0.0.1")});
  auto d = DecodeDhcp(EncodeDhcp(m));
  ASSERT_TRUE(d.ok()) << d.error().message();
  ASSERT_EQ(d->lease.dns.size(), 100u);
  EXPECT_EQ(d->lease.dns[99].s_addr, htonl(0x0a000000 + 99));
  ASSERT_EQ(d->lease.classless_routes.size(), 60u);
  EXPECT_EQ(d->lease.classless_routes[59].dst.s_addr, htonl(0x0a000000 + (59u << 8)));
}

TEST(Dhcp, RejectsMalformed) {
  std::vector<uint8_t> small(100, 0);
  EXPECT_FALSE(DecodeDhcp(small).ok());
  DhcpMessage m;
  auto bytes = EncodeDhcp(m);
  bytes[236] = 0;  // magic cookie broken
  EXPECT_FALSE(DecodeDhcp(bytes).ok());
  bytes = EncodeDhcp(m);
  // Option 53 is first after the cookie: make its length run past the end.
  bytes.resize(243);
  bytes[241] = 200;
  EXPECT_FALSE(DecodeDhcp(bytes).ok());
}

TEST(Dhcp, Ipv4UdpFramingRoundTripsWithValidChecksums) {
  std::vector<uint8_t> payload = {1, 2, 3, 4, 5};
  auto pkt = WrapIpv4Udp(payload, A("0.0.0.0"), A("255.255.255.255"), 68, 67);
  ASSERT_EQ(pkt.size(), 20u + 8u + 5u);
  // The IPv4 header checksum verifies to zero.
  uint32_t sum = 0;
  for (int i = 0; i < 20; i += 2) sum += (pkt[i] << 8) | pkt[i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  EXPECT_EQ(sum, 0xffffu);
  auto out = UnwrapIpv4Udp(pkt, 67);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(std::vector<uint8_t>(out->begin(), out->end()), payload);
  EXPECT_FALSE(UnwrapIpv4Udp(pkt, 68).ok());
  pkt[9] = 6;  // TCP
  EXPECT_FALSE(UnwrapIpv4Udp(pkt, 67).ok());
}

}  // namespace
}  // namespace nfc::init::host
