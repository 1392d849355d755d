// What a guest writes on its channel to the host (a root user in the guest can replace nomad-init and write
// anything): the frame decoder and the host's AgentClient. An input is a list of pieces separated by
// "\n=FRAME=\n"; each piece is sent framed (magic, length, CRC) as a GuestMessage payload, or raw when it
// starts with "RAW:", after a valid hello reply. The client reads logs and file batches until the stream
// ends. Properties: per stream, log chunks are delivered in order without overlap (offsets never move back),
// and the decoder hands out no payload larger than its limit.
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "fuzz_util.h"
#include "guest/agent.pb.h"
#include "guest/agent_client.h"
#include "guest/framing.h"

namespace {

namespace pb = nfc::guest::v1;
constexpr std::string_view kPieceSeparator = "\n=FRAME=\n";

void WriteAll(int fd, const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;  // the client gave up: fine, that is one of the outcomes
    off += static_cast<size_t>(n);
  }
}

// The guest's side: answer the hello, write the pieces, stop writing, read until the client closes.
void PlayGuest(nfc::UniqueFd fd, std::string_view input) {
  nfc::guest::FrameDecoder decoder;
  std::optional<pb::HostMessage> hello;
  char buf[4096];
  while (!hello) {
    if (auto p = decoder.Next()) {
      pb::HostMessage m;
      if (m.ParseFromString(*p) && m.has_hello()) hello = m;
      continue;
    }
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n <= 0) return;
    decoder.Feed(buf, static_cast<size_t>(n));
  }
  pb::GuestMessage reply;
  reply.mutable_hello_reply()->set_version(hello->hello().max_version());
  reply.mutable_hello_reply()->set_session(hello->hello().session());
  reply.mutable_hello_reply()->set_boot_id(7);
  reply.mutable_hello_reply()->mutable_status()->set_phase(pb::PHASE_RUNNING);
  std::string out;
  nfc::guest::AppendFrame(out, reply.SerializeAsString());
  while (!input.empty()) {
    std::string_view piece = nfc::fuzz::TakeUntil(input, kPieceSeparator);
    if (piece.substr(0, 4) == "RAW:") {
      out.append(piece.substr(4));
    } else if (piece.size() <= nfc::guest::kMaxFramePayload) {
      nfc::guest::AppendFrame(out, piece);
    }
  }
  WriteAll(fd.get(), out);
  ::shutdown(fd.get(), SHUT_WR);
  while (::read(fd.get(), buf, sizeof buf) > 0) {
  }
}

void CheckDecoderAlone(std::string_view input) {
  nfc::guest::FrameDecoder decoder(4096);
  decoder.Feed(input.data(), input.size());
  while (auto p = decoder.Next()) NFC_FUZZ_CHECK(p->size() <= 4096);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input = nfc::fuzz::AsText(data, size);
  CheckDecoderAlone(input);
  int sv[2];
  NFC_FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  std::thread guest(PlayGuest, nfc::UniqueFd(sv[1]), input);
  nfc::guest::AgentClient::Options options;
  options.handshake_timeout = std::chrono::seconds(5);
  auto client = nfc::guest::AgentClient::Connect(nfc::UniqueFd(sv[0]), options);
  if (client.ok()) {
    std::array<uint64_t, 2> next = {0, 0};
    for (;;) {
      auto chunk = (*client)->NextLog(std::chrono::milliseconds(20));
      if (!chunk.ok()) break;
      if (!chunk->has_value()) {
        if (!(*client)->connected()) break;
        continue;
      }
      auto& at = next.at(static_cast<size_t>((*chunk)->stream) - 1);
      NFC_FUZZ_CHECK((*chunk)->offset >= at);  // in order, never back
      at = (*chunk)->offset + (*chunk)->data.size();
    }
    while (true) {
      auto batch = (*client)->NextFileBatch(std::chrono::milliseconds(0));
      if (!batch.ok() || !batch->has_value()) break;
    }
    (*client)->Close();
  }
  client = nfc::Error(nfc::ErrorCode::kUnavailable, "done");  // closes the socket: the guest stops reading
  guest.join();
  return 0;
}
