// QmpClient against a scripted peer on a socketpair: replies of shapes QEMU never sends end in an error,
// never in an exception (which ended the shim before the qmp fuzz target found them).
#include "vmm/qemu/qmp_client.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace nfc::vmm::qemu {
namespace {

using namespace std::chrono_literals;

// The client's Handshake over a socket whose peer already wrote `script` and then stopped writing (it still
// reads, so the client's commands are sent).
Status HandshakeWith(const std::string& script, QmpClient& client) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return Error::Errno("socketpair");
  UniqueFd peer(sv[1]);
  if (::write(peer.get(), script.data(), script.size()) != static_cast<ssize_t>(script.size())) {
    return Error::Errno("write script");
  }
  if (::shutdown(peer.get(), SHUT_WR) != 0) return Error::Errno("shutdown");
  return client.Handshake(UniqueFd(sv[0]), std::chrono::steady_clock::now() + 5s);
}

constexpr const char* kGreeting = R"({"QMP": {"version": {"qemu": {"micro": 5, "minor": 2, "major": 7}}}})"
                                  "\r\n";

TEST(QmpClient, NegotiatesAndReadsTheVersion) {
  QmpClient c;
  ASSERT_TRUE(HandshakeWith(std::string(kGreeting) + "{\"return\": {}, \"id\": 1}\r\n", c).ok());
  EXPECT_EQ(c.version(), "7.2.5");
}

TEST(QmpClient, OddShapesAreErrorsNotExceptions) {
  const char* replies[] = {
      "{\"error\": \"boom\", \"id\": 1}\r\n",           // error not an object
      "{\"error\": {\"class\": 7, \"desc\": []}}\r\n",  // members of the wrong type
      "[1, 2]\r\n",                                     // not an object at all
      "\"return\"\r\n",
      "{\"id\": 1}\r\n",  // neither return nor error
  };
  for (const char* reply : replies) {
    QmpClient c;
    Status s = HandshakeWith(std::string(kGreeting) + reply, c);
    EXPECT_FALSE(s.ok()) << reply;
  }
}

TEST(QmpClient, AGreetingOfOddShapeGivesNoVersionInsteadOfThrowing) {
  QmpClient none;
  EXPECT_FALSE(HandshakeWith("[]\r\n", none).ok());
  QmpClient flat;
  ASSERT_TRUE(HandshakeWith("{\"QMP\": 3}\r\n{\"return\": {}}\r\n", flat).ok());
  EXPECT_EQ(flat.version(), "");
  QmpClient typed;
  ASSERT_TRUE(
      HandshakeWith("{\"QMP\": {\"version\": {\"qemu\": {\"major\": \"x\"}}}}\r\n{\"return\": {}}\r\n", typed)
          .ok());
  EXPECT_EQ(typed.version(), "0.0.0");
}

}  // namespace
}  // namespace nfc::vmm::qemu
