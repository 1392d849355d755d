#include "vmm/firecracker/http_over_unix.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

namespace nfc::vmm::firecracker {
namespace {

using Clock = std::chrono::steady_clock;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// RFC 9110 token characters (header names, methods).
bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

// A value quoted for an error message: printable, bounded.
std::string Quote(std::string_view s) {
  constexpr size_t kMax = 80;
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (s.size() > kMax) out += "...";
  return out + "'";
}

// Whole list of comma-separated tokens of a header value contains `token` (case-insensitive)?
bool HasToken(std::string_view value, std::string_view token) {
  std::string v = Lower(value);
  size_t pos = 0;
  while (pos <= v.size()) {
    size_t comma = v.find(',', pos);
    if (comma == std::string::npos) comma = v.size();
    if (Trim(std::string_view(v).substr(pos, comma - pos)) == token) return true;
    pos = comma + 1;
  }
  return false;
}

// Milliseconds left until `deadline`, for poll(); 0 once passed.
int MillisLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  return static_cast<int>(std::min<long long>(left + 1, 1 << 30));
}

// Waits for `events` on fd until the deadline. kTimeout when it passes.
Status WaitFor(int fd, short events, Clock::time_point deadline, std::string_view what) {
  for (;;) {
    int ms = MillisLeft(deadline);
    if (ms == 0) return Error::Timeout(std::string(what) + ": deadline passed");
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, ms);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::Errno(std::string(what) + ": poll");
    if (n > 0) return Ok();
  }
}

}  // namespace

const std::string* HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return &v;
  }
  return nullptr;
}

// ---- parser -----------------------------------------------------------------------------------------------

Result<bool> HttpResponseParser::TakeLine(std::string_view data, size_t* used, std::string* line) {
  size_t nl = data.find('\n');
  size_t take = nl == std::string_view::npos ? data.size() : nl + 1;
  if (line_.size() + take > kMaxHeaderBytes) {
    return Error::DataLoss("HTTP answer line longer than " + std::to_string(kMaxHeaderBytes) + " bytes");
  }
  line_.append(data.substr(0, take));
  *used = take;
  if (nl == std::string_view::npos) return false;
  line_.pop_back();  // '\n'
  if (!line_.empty() && line_.back() == '\r')
    line_.pop_back();  // CRLF; a bare LF is tolerated (RFC 9112 2.2)
  if (line_.find('\r') != std::string::npos || line_.find('\0') != std::string::npos) {
    return Error::DataLoss("HTTP answer line has a stray CR or NUL: " + Quote(line_));
  }
  *line = std::move(line_);
  line_.clear();
  return true;
}

Status HttpResponseParser::ParseStatusLine(std::string_view line) {
  // HTTP-version SP 3DIGIT SP [reason]
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || (line[7] != '0' && line[7] != '1') ||
      line[8] != ' ') {
    return Error::DataLoss("malformed HTTP status line (want 'HTTP/1.x NNN reason'): " + Quote(line));
  }
  std::string_view code = line.substr(9, 3);
  if (!std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; }) || code[0] == '0' ||
      (line.size() > 12 && line[12] != ' ')) {
    return Error::DataLoss("malformed HTTP status code in status line: " + Quote(line));
  }
  response_ = HttpResponse{};
  response_.status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
  response_.reason = line.size() > 13 ? std::string(line.substr(13)) : std::string();
  http10_ = line[7] == '0';
  return Ok();
}

Status HttpResponseParser::ParseHeaderLine(std::string_view line) {
  if (line.front() == ' ' || line.front() == '\t') {
    return Error::DataLoss("HTTP header line folding is not allowed: " + Quote(line));
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Error::DataLoss("malformed HTTP header line (no 'name:'): " + Quote(line));
  }
  std::string_view name = line.substr(0, colon);
  if (!std::all_of(name.begin(), name.end(), IsTokenChar)) {
    return Error::DataLoss("malformed HTTP header name " + Quote(name));
  }
  std::string lname = Lower(name);
  std::string_view value = Trim(line.substr(colon + 1));
  if (lname == "content-length") {
    if (value.empty() || value.size() > 15 ||
        !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return Error::DataLoss("malformed HTTP Content-Length " + Quote(value));
    }
    size_t n = std::stoull(std::string(value));
    if (have_content_length_ && n != content_length_) {
      return Error::DataLoss("conflicting HTTP Content-Length headers: " + std::to_string(content_length_) +
                             " and " + std::to_string(n));
    }
    have_content_length_ = true;
    content_length_ = n;
  } else if (lname == "transfer-encoding") {
    if (Lower(value) != "chunked") {
      return Error::DataLoss("unsupported HTTP Transfer-Encoding " + Quote(value) + " (only 'chunked')");
    }
    chunked_ = true;
  } else if (lname == "connection") {
    if (HasToken(value, "close")) connection_close_ = true;
    if (HasToken(value, "keep-alive")) connection_keep_alive_ = true;
  }
  response_.headers.emplace_back(std::move(lname), std::string(value));
  return Ok();
}

Status HttpResponseParser::HeadersDone() {
  int s = response_.status;
  if (s >= 100 && s < 200) {  // interim answer (we never ask for one): the real one follows
    *this = HttpResponseParser(head_request_);
    return Ok();
  }
  response_.keep_alive = !connection_close_ && (!http10_ || connection_keep_alive_);
  if (head_request_ || s == 204 || s == 304) {
    state_ = State::kDone;
    return Ok();
  }
  if (chunked_) {
    // RFC 9112 6.3: Transfer-Encoding overrides Content-Length; such a message must not be reused after.
    if (have_content_length_) response_.keep_alive = false;
    state_ = State::kChunkSize;
    return Ok();
  }
  if (have_content_length_) {
    if (content_length_ > kMaxBodyBytes) {
      return Error::DataLoss("HTTP Content-Length " + std::to_string(content_length_) +
                             " exceeds the limit of " + std::to_string(kMaxBodyBytes) + " bytes");
    }
    remaining_ = content_length_;
    state_ = remaining_ == 0 ? State::kDone : State::kBodyLength;
    return Ok();
  }
  response_.keep_alive = false;  // the close ends the body
  state_ = State::kBodyUntilClose;
  return Ok();
}

Status HttpResponseParser::ParseChunkSize(std::string_view line) {
  std::string_view size = Trim(line.substr(0, line.find(';')));  // chunk extensions are ignored
  if (size.empty() || size.size() > 8 || !std::all_of(size.begin(), size.end(), [](char c) {
        return std::isxdigit(static_cast<unsigned char>(c));
      })) {
    return Error::DataLoss("malformed HTTP chunk size line " + Quote(line));
  }
  size_t n = std::stoul(std::string(size), nullptr, 16);
  if (response_.body.size() + n > kMaxBodyBytes) {
    return Error::DataLoss("HTTP chunked body exceeds the limit of " + std::to_string(kMaxBodyBytes) +
                           " bytes");
  }
  remaining_ = n;
  state_ = n == 0 ? State::kTrailers : State::kChunkData;
  return Ok();
}

Result<size_t> HttpResponseParser::Feed(std::string_view data) {
  size_t pos = 0;
  while (pos < data.size() && state_ != State::kDone) {
    std::string_view rest = data.substr(pos);
    switch (state_) {
      case State::kStatusLine:
      case State::kHeaders:
      case State::kChunkSize:
      case State::kChunkDataEnd:
      case State::kTrailers: {
        size_t used = 0;
        std::string line;
        NFC_ASSIGN_OR_RETURN(bool have_line, TakeLine(rest, &used, &line));
        pos += used;
        bytes_seen_ += used;
        if (state_ == State::kStatusLine || state_ == State::kHeaders) {
          header_bytes_ += used;
          if (header_bytes_ > kMaxHeaderBytes) {
            return Error::DataLoss("HTTP answer headers longer than " + std::to_string(kMaxHeaderBytes) +
                                   " bytes");
          }
        }
        if (!have_line) break;
        if (state_ == State::kStatusLine) {
          NFC_RETURN_IF_ERROR(ParseStatusLine(line));
          state_ = State::kHeaders;
        } else if (state_ == State::kHeaders) {
          if (line.empty()) {
            NFC_RETURN_IF_ERROR(HeadersDone());
          } else {
            NFC_RETURN_IF_ERROR(ParseHeaderLine(line));
          }
        } else if (state_ == State::kChunkSize) {
          NFC_RETURN_IF_ERROR(ParseChunkSize(line));
        } else if (state_ == State::kChunkDataEnd) {
          if (!line.empty()) return Error::DataLoss("HTTP chunk not followed by CRLF: " + Quote(line));
          state_ = State::kChunkSize;
        } else if (line.empty()) {  // kTrailers: trailer fields are ignored up to the empty line
          state_ = State::kDone;
        }
        break;
      }
      case State::kBodyLength:
      case State::kChunkData: {
        size_t take = std::min(remaining_, rest.size());
        response_.body.append(rest.substr(0, take));
        remaining_ -= take;
        pos += take;
        bytes_seen_ += take;
        if (remaining_ == 0) state_ = state_ == State::kBodyLength ? State::kDone : State::kChunkDataEnd;
        break;
      }
      case State::kBodyUntilClose:
        if (response_.body.size() + rest.size() > kMaxBodyBytes) {
          return Error::DataLoss("HTTP body exceeds the limit of " + std::to_string(kMaxBodyBytes) +
                                 " bytes");
        }
        response_.body.append(rest);
        pos += rest.size();
        bytes_seen_ += rest.size();
        break;
      case State::kDone:
        break;
    }
  }
  return pos;
}

Status HttpResponseParser::FeedEof() {
  switch (state_) {
    case State::kDone:
      return Ok();
    case State::kBodyUntilClose:
      state_ = State::kDone;
      return Ok();
    case State::kStatusLine:
      if (bytes_seen_ == 0) return Error::Unavailable("connection closed before any answer");
      return Error::DataLoss("connection closed inside the HTTP status line");
    case State::kHeaders:
      return Error::DataLoss("connection closed inside the HTTP headers");
    case State::kBodyLength:
      return Error::DataLoss("connection closed after " + std::to_string(content_length_ - remaining_) +
                             " of " + std::to_string(content_length_) + " body bytes");
    default:
      return Error::DataLoss("connection closed inside a chunked body after " +
                             std::to_string(response_.body.size()) + " bytes");
  }
}

// ---- connection -------------------------------------------------------------------------------------------

Status HttpOverUnix::Connect(Clock::time_point deadline) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path_.size() >= sizeof addr.sun_path) {
    return Error::InvalidArgument("socket path too long (" + std::to_string(socket_path_.size()) +
                                  " bytes): " + socket_path_);
  }
  std::memcpy(addr.sun_path, socket_path_.c_str(), socket_path_.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return Error::Errno("socket(AF_UNIX)");
  for (;;) {
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {  // the listener's backlog is full: Firecracker is busy, try again shortly
      if (MillisLeft(deadline) == 0)
        return Error::Timeout("connect " + socket_path_ + ": backlog full until deadline");
      ::usleep(2000);
      continue;
    }
    if (errno == EINPROGRESS) {
      NFC_RETURN_IF_ERROR(WaitFor(fd.get(), POLLOUT, deadline, "connect " + socket_path_));
      int err = 0;
      socklen_t len = sizeof err;
      if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        return Error::Errno("getsockopt SO_ERROR");
      if (err != 0) {
        Error e = Error::Sys(err, "connect " + socket_path_);
        return Error::Unavailable(e.message());
      }
      break;
    }
    Error e = Error::Errno("connect " + socket_path_);
    return Error::Unavailable(e.message());
  }
  fd_ = std::move(fd);
  ++connections_opened_;
  return Ok();
}

bool HttpOverUnix::IdleConnectionUsable() {
  pollfd p{fd_.get(), POLLIN, 0};
  int n;
  do {
    n = ::poll(&p, 1, 0);
  } while (n < 0 && errno == EINTR);
  // Nothing pending: usable. Anything pending on an idle connection (EOF, an error, or unsolicited bytes)
  // means it cannot carry our next answer cleanly.
  return n == 0;
}

Result<HttpResponse> HttpOverUnix::Exchange(std::string_view request, bool head_request,
                                            Clock::time_point deadline, bool* answer_started) {
  *answer_started = false;
  size_t off = 0;
  while (off < request.size()) {
    ssize_t n = ::send(fd_.get(), request.data() + off, request.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      NFC_RETURN_IF_ERROR(WaitFor(fd_.get(), POLLOUT, deadline, "send to " + socket_path_));
      continue;
    }
    Error e = Error::Errno("send to " + socket_path_);
    return Error::Unavailable(e.message());
  }

  HttpResponseParser parser(head_request);
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      NFC_RETURN_IF_ERROR(WaitFor(fd_.get(), POLLIN, deadline, "read answer from " + socket_path_));
      continue;
    }
    if (n < 0) {
      Error e = Error::Errno("read answer from " + socket_path_);
      return Error::Unavailable(e.message());
    }
    if (n == 0) {
      NFC_RETURN_IF_ERROR(parser.FeedEof());
      parser.response().keep_alive = false;
      return std::move(parser.response());
    }
    *answer_started = true;
    NFC_ASSIGN_OR_RETURN(size_t used, parser.Feed(std::string_view(buf, static_cast<size_t>(n))));
    if (parser.complete()) {
      // Bytes past the answer were never asked for: the connection is out of step, do not reuse it.
      if (used < static_cast<size_t>(n)) parser.response().keep_alive = false;
      return std::move(parser.response());
    }
  }
}

Result<HttpResponse> HttpOverUnix::RoundTrip(std::string_view method, std::string_view target,
                                             std::string_view content_type, std::string_view body,
                                             Clock::time_point deadline) {
  if (method.empty() || !std::all_of(method.begin(), method.end(), IsTokenChar)) {
    return Error::InvalidArgument("HTTP method " + Quote(method) + " is not a token");
  }
  if (target.empty() || target.front() != '/' ||
      std::any_of(target.begin(), target.end(), [](char c) { return c <= ' ' || c == 0x7f; })) {
    return Error::InvalidArgument("HTTP request target " + Quote(target) +
                                  " must start with '/' and hold no spaces or control characters");
  }
  if (std::any_of(content_type.begin(), content_type.end(), [](char c) { return c < ' ' || c == 0x7f; })) {
    return Error::InvalidArgument("HTTP Content-Type " + Quote(content_type) + " holds control characters");
  }
  std::string request;
  request.reserve(128 + target.size() + body.size());
  request.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  request.append("Host: localhost\r\nAccept: application/json\r\n");
  bool has_body = !body.empty() || !content_type.empty();
  if (!content_type.empty()) request.append("Content-Type: ").append(content_type).append("\r\n");
  if (has_body || method == "PUT" || method == "PATCH" || method == "POST") {
    request.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  request.append("\r\n").append(body);
  bool head = method == "HEAD";

  for (int attempt = 0;; ++attempt) {
    bool reused = fd_.valid();
    if (reused && !IdleConnectionUsable()) {
      fd_.Reset();
      reused = false;
    }
    if (!fd_) NFC_RETURN_IF_ERROR(Connect(deadline));
    bool answer_started = false;
    auto r = Exchange(request, head, deadline, &answer_started);
    if (r.ok()) {
      if (!r->keep_alive) fd_.Reset();
      return r;
    }
    fd_.Reset();  // after any failure the connection's state is unknown
    // A kept-alive connection the server closed between our check and our send: the server saw nothing of
    // this request (no answer byte came back), so sending it again on a fresh connection is safe. Once only.
    if (reused && attempt == 0 && !answer_started && r.error().code() == ErrorCode::kUnavailable) continue;
    return r;
  }
}

}  // namespace nfc::vmm::firecracker
