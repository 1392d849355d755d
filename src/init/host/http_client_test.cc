#include "init/host/http_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/unique_fd.h"
#include "init/host/metadata_test_server.h"

namespace nfc::init::host {
namespace {

using testing::LoopbackHttpServer;

HttpTarget Target(const LoopbackHttpServer& s, size_t limit = 1024) {
  HttpTarget t;
  t.address = "127.0.0.1";
  t.port = s.port();
  t.connect_timeout = std::chrono::milliseconds(500);
  t.total_timeout = std::chrono::milliseconds(1000);
  t.body_limit = limit;
  return t;
}

TEST(HttpParse, ContentLengthBody) {
  auto r = ParseHttpResponse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  b \r\n\r\nhello", 100, false);
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_TRUE(*r);
  EXPECT_EQ((*r)->status, 200);
  EXPECT_EQ((*r)->body, "hello");
  EXPECT_EQ(HttpHeader(**r, "x-a"), "b");
}

TEST(HttpParse, IncompleteUntilEnoughBytes) {
  auto r = ParseHttpResponse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", 100, false);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  auto t = ParseHttpResponse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", 100, true);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().message(), "body truncated: 3 of 5 bytes");
  auto h = ParseHttpResponse("HTTP/1.1 200 OK\r\nContent-Le", 100, false);
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(*h);
}

TEST(HttpParse, BodyUntilEofAndChunked) {
  auto r = ParseHttpResponse("HTTP/1.0 404 Not Found\r\n\r\nnope", 100, true);
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_EQ((*r)->status, 404);
  EXPECT_EQ((*r)->body, "nope");
  auto c = ParseHttpResponse(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n",
      100, false);
  ASSERT_TRUE(c.ok()) << c.error().message();
  ASSERT_TRUE(*c);
  EXPECT_EQ((*c)->body, "abcde");
}

TEST(HttpParse, RefusesWhatIsNotStrictHttp) {
  const char* bad[] = {
      "HTTP/2 200\r\n\r\n",
      "HTTP/1.1 20x OK\r\n\r\n",
      "HTTP/1.1 100 Continue\r\n\r\n",
      "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
      "HTTP/1.1 200 OK\r\n folded: x\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
  };
  for (const char* b : bad) EXPECT_FALSE(ParseHttpResponse(b, 100, true).ok()) << b;
}

TEST(HttpParse, BodyLimits) {
  auto cl = ParseHttpResponse("HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n", 100, false);
  ASSERT_FALSE(cl.ok());
  EXPECT_EQ(cl.error().message(), "content-length 101 is over the limit of 100 bytes");
  EXPECT_FALSE(ParseHttpResponse("HTTP/1.1 200 OK\r\n\r\n" + std::string(101, 'x'), 100, false).ok());
  EXPECT_FALSE(
      ParseHttpResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n", 100, false).ok());
  EXPECT_FALSE(
      ParseHttpResponse("HTTP/1.1 200 OK\r\n" + std::string(kHttpHeaderLimit + 8, 'a'), 100, false).ok());
}

TEST(HttpDo, RequestAndResponse) {
  std::string seen;
  LoopbackHttpServer s([&](const std::string& req) {
    seen = req;
    return std::string("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  });
  auto r = HttpDo(Target(s), {.method = "PUT", .path = "/latest/api/token", .headers = {{"X-T", "5"}}});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->body, "ok");
  EXPECT_EQ(seen.rfind("PUT /latest/api/token HTTP/1.1\r\n", 0), 0u) << seen;
  EXPECT_NE(seen.find("\r\nX-T: 5\r\n"), std::string::npos) << seen;
  EXPECT_NE(seen.find("\r\nConnection: close\r\n"), std::string::npos) << seen;
  EXPECT_NE(seen.find("\r\nContent-Length: 0\r\n"), std::string::npos) << seen;
}

TEST(HttpDo, OversizeBodyRefused) {
  LoopbackHttpServer s(
      [](const std::string&) { return "HTTP/1.1 200 OK\r\n\r\n" + std::string(1 << 20, 'x'); });
  auto r = HttpDo(Target(s, 4096), {.method = "GET", .path = "/big", .headers = {}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("body over the limit of 4096 bytes"), std::string::npos)
      << r.error().message();
}

TEST(HttpDo, SilentServerTimesOut) {
  LoopbackHttpServer s([](const std::string&) { return std::string(LoopbackHttpServer::kHang); });
  auto t0 = std::chrono::steady_clock::now();
  auto r = HttpDo(Target(s), {.method = "GET", .path = "/slow", .headers = {}});
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kTimeout) << r.error().message();
  EXPECT_LT(took, std::chrono::seconds(3));
}

TEST(HttpDo, RefusedConnectionIsUnavailable) {
  int port;
  {
    LoopbackHttpServer s([](const std::string&) { return std::string(); });
    port = s.port();
  }
  HttpTarget t;
  t.address = "127.0.0.1";
  t.port = static_cast<uint16_t>(port);
  auto r = HttpDo(t, {.method = "GET", .path = "/", .headers = {}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable) << r.error().message();
  EXPECT_FALSE(HttpDo(t, {.method = "GET", .path = "/a b", .headers = {}}).ok());
  EXPECT_FALSE(HttpDo(t, {.method = "GET", .path = "/", .headers = {{"X", "a\r\nInjected: 1"}}}).ok());
}

}  // namespace
}  // namespace nfc::init::host
