// AgentClient against a scripted fake guest on a socketpair: hello resynchronisation on a byte stream that
// carries stale bytes, duplicate suppression across resends, request/reply matching.
#include "guest/agent_client.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <limits>
#include <thread>

#include "guest/agent.pb.h"
#include "guest/framing.h"

namespace nfc::guest {
namespace {

using namespace std::chrono_literals;

class FakeGuest {
 public:
  explicit FakeGuest(int fd) : fd_(fd) {}
  std::optional<v1::HostMessage> Read() {
    char buf[4096];
    for (;;) {
      if (auto p = decoder_.Next()) {
        v1::HostMessage m;
        if (m.ParseFromString(*p)) return m;
        continue;
      }
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) return std::nullopt;
      decoder_.Feed(buf, static_cast<size_t>(n));
    }
  }
  void WriteRaw(const std::string& bytes) {
    ASSERT_EQ(::write(fd_, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  void Write(const v1::GuestMessage& m) {
    std::string frame;
    AppendFrame(frame, m.SerializeAsString());
    WriteRaw(frame);
  }

 private:
  int fd_;
  FrameDecoder decoder_;
};

v1::GuestMessage HelloReply(uint64_t session) {
  v1::GuestMessage m;
  auto* r = m.mutable_hello_reply();
  r->set_version(1);
  r->set_session(session);
  r->set_boot_id(42);
  r->mutable_status()->set_phase(v1::PHASE_RUNNING);
  return m;
}

v1::GuestMessage Chunk(uint64_t offset, const std::string& data) {
  v1::GuestMessage m;
  m.mutable_log()->set_stream(v1::STREAM_STDOUT);
  m.mutable_log()->set_offset(offset);
  m.mutable_log()->set_data(data);
  return m;
}

// Reads log chunks into got until it holds `bytes` bytes; each chunk must start where the previous ended,
// the first at `from`.
void ReadContiguous(AgentClient& c, uint64_t from, size_t bytes, std::string& got) {
  uint64_t next = from;
  while (got.size() < bytes) {
    auto chunk = c.NextLog(5s);
    ASSERT_TRUE(chunk.ok() && *chunk);
    EXPECT_EQ((*chunk)->offset, next);
    next += (*chunk)->data.size();
    got += (*chunk)->data;
  }
}

TEST(AgentClient, ResynchronisesOnAByteStreamWithStaleBytes) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  std::thread guest([fd = sv[1]] {
    FakeGuest g(fd);
    auto hello = g.Read();
    ASSERT_TRUE(hello && hello->has_hello());
    EXPECT_EQ(hello->hello().resume(0).offset(), 3u);
    // What a virtio-serial port may carry after a reconnect: the tail of an old frame, the start of a frame
    // that will never complete, and a reply to somebody else's session. The client must skip all of it.
    std::string stale;
    AppendFrame(stale, Chunk(0, std::string(5000, 'x')).SerializeAsString());
    g.WriteRaw(stale.substr(100));
    g.WriteRaw(stale.substr(0, 200));
    g.Write(HelloReply(hello->hello().session() + 1));
    // The client resends its hello after a second of silence; answer that one properly.
    auto again = g.Read();
    ASSERT_TRUE(again && again->has_hello());
    EXPECT_EQ(again->hello().session(), hello->hello().session());
    g.Write(HelloReply(again->hello().session()));
    g.Write(Chunk(0, "abc"));     // already delivered before (resume = 3): dropped
    g.Write(Chunk(0, "abcdef"));  // overlaps: only "def" is new
    g.Write(Chunk(6, "gh"));
    auto status = g.Read();
    ASSERT_TRUE(status && status->has_status());
    v1::GuestMessage reply;
    reply.set_request_id(status->request_id());
    reply.mutable_status()->set_phase(v1::PHASE_EXITED);
    g.Write(reply);
    g.Read();  // until the client closes
    close(fd);
  });
  AgentClient::Options o;
  o.resume.stdout_offset = 3;
  o.handshake_timeout = 5s;
  auto c = AgentClient::Connect(UniqueFd(sv[0]), o);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ((*c)->boot_id(), 42u);
  EXPECT_EQ((*c)->initial_status().phase, GuestPhase::kRunning);
  std::string got;
  ReadContiguous(**c, 3, 5, got);
  EXPECT_EQ(got, "defgh");
  auto st = (*c)->QueryStatus();
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  EXPECT_EQ(st->phase, GuestPhase::kExited);
  (*c)->Close();
  guest.join();
}

TEST(AgentClient, AChunkWhoseOffsetWouldWrapIsDroppedAndTheStreamNeverMovesBack) {
  // Found by the guest_frames fuzz target: offset + size past 2^64 wrapped, the stream's next offset moved
  // back to a small number, and lines already delivered were delivered again.
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  std::thread guest([fd = sv[1]] {
    FakeGuest g(fd);
    auto hello = g.Read();
    ASSERT_TRUE(hello && hello->has_hello());
    g.Write(HelloReply(hello->hello().session()));
    g.Write(Chunk(0, "abc"));
    g.Write(Chunk(std::numeric_limits<uint64_t>::max() - 1, "wrap"));
    g.Write(Chunk(0, "abc"));  // a resend of what was delivered: must still be recognised as old
    g.Write(Chunk(3, "de"));
    g.Read();  // until the client closes
    close(fd);
  });
  AgentClient::Options o;
  o.handshake_timeout = 5s;
  auto c = AgentClient::Connect(UniqueFd(sv[0]), o);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  std::string got;
  ReadContiguous(**c, 0, 5, got);
  EXPECT_EQ(got, "abcde");
  (*c)->Close();
  guest.join();
}

TEST(AgentClient, RefusedHelloIsAClearError) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  std::thread guest([fd = sv[1]] {
    FakeGuest g(fd);
    auto hello = g.Read();
    v1::GuestMessage m;
    m.mutable_reply()->set_error_code("failed precondition");
    m.mutable_reply()->set_error("protocol versions 1..1 are not supported; this init speaks 2");
    g.Write(m);
    g.Read();
    close(fd);
  });
  auto c = AgentClient::Connect(UniqueFd(sv[0]), {});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().ToString().find("this init speaks 2"), std::string::npos);
  guest.join();
}

}  // namespace
}  // namespace nfc::guest
