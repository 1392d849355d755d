#include "init/host/http_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/unique_fd.h"

namespace nfc::init::host {
namespace {

using Clock = std::chrono::steady_clock;
using Parsed = Result<std::optional<HttpResponse>>;

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool TokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// "HTTP/1.x NNN[ reason]" -> NNN.
Result<int> ParseStatusLine(std::string_view line) {
  if (line.size() < 12 || (line.substr(0, 9) != "HTTP/1.1 " && line.substr(0, 9) != "HTTP/1.0 ") ||
      !std::all_of(line.begin() + 9, line.begin() + 12, [](char c) { return c >= '0' && c <= '9'; }) ||
      (line.size() > 12 && line[12] != ' ')) {
    return Error::InvalidArgument("status line '" + std::string(line.substr(0, 64)) +
                                  "' is not HTTP/1.x NNN");
  }
  int status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  if (status < 200) return Error::InvalidArgument("status " + std::to_string(status) + " not expected");
  return status;
}

Status ParseHeaderLines(std::string_view block, HttpResponse& r) {
  while (!block.empty()) {
    size_t end = block.find("\r\n");
    std::string_view line = block.substr(0, end);
    block = end == std::string_view::npos ? std::string_view() : block.substr(end + 2);
    size_t colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos ||
        !std::all_of(line.begin(), line.begin() + static_cast<std::ptrdiff_t>(colon), TokenChar)) {
      return Error::InvalidArgument("header line '" + std::string(line.substr(0, 64)) +
                                    "' is not `name: value`");
    }
    std::string_view value = TrimSpace(line.substr(colon + 1));
    if (std::any_of(value.begin(), value.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; })) {
      return Error::InvalidArgument("header '" + std::string(line.substr(0, colon)) + "': control character");
    }
    if (r.headers.size() == kHttpHeaderCount) {
      return Error::InvalidArgument("more than " + std::to_string(kHttpHeaderCount) + " headers");
    }
    r.headers.emplace_back(Lower(line.substr(0, colon)), std::string(value));
  }
  return Status();
}

// Content-Length: digits only, one value (repeated equal values are tolerated, as RFC 9110 allows).
Result<std::optional<size_t>> ContentLength(const HttpResponse& r, size_t body_limit) {
  std::optional<size_t> length;
  for (const auto& [name, value] : r.headers) {
    if (name != "content-length") continue;
    if (value.empty() || value.size() > 18 ||
        !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return Error::InvalidArgument("content-length '" + value.substr(0, 32) + "' is not a number");
    }
    size_t n = std::stoull(value);
    if (length && *length != n) return Error::InvalidArgument("content-length given twice, differently");
    if (n > body_limit) {
      return Error::InvalidArgument("content-length " + value + " is over the limit of " +
                                    std::to_string(body_limit) + " bytes");
    }
    length = n;
  }
  return length;
}

// Decodes a chunked body (RFC 9112 7.1); chunk extensions and trailers are read and dropped.
Parsed DecodeChunked(std::string_view rest, size_t body_limit, bool eof, HttpResponse r) {
  auto more = [&]() -> Parsed {
    if (eof) return Error::InvalidArgument("response ended inside a chunked body");
    return std::optional<HttpResponse>();
  };
  while (true) {
    size_t eol = rest.find("\r\n");
    if (eol == std::string_view::npos)
      return rest.size() > 1024 ? Parsed(Error::InvalidArgument("chunk size line too long")) : more();
    std::string_view size_text = rest.substr(0, std::min(eol, rest.find(';')));
    size_text = TrimSpace(size_text);
    if (size_text.empty() || size_text.size() > 8 ||
        !std::all_of(size_text.begin(), size_text.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; })) {
      return Error::InvalidArgument("chunk size '" + std::string(size_text.substr(0, 16)) + "' is not hex");
    }
    size_t size = std::stoul(std::string(size_text), nullptr, 16);
    rest.remove_prefix(eol + 2);
    if (size == 0) break;
    if (size > body_limit || r.body.size() + size > body_limit) {
      return Error::InvalidArgument("chunked body over the limit of " + std::to_string(body_limit) +
                                    " bytes");
    }
    if (rest.size() < size + 2) return more();
    if (rest.substr(size, 2) != "\r\n") return Error::InvalidArgument("chunk not followed by CRLF");
    r.body.append(rest.substr(0, size));
    rest.remove_prefix(size + 2);
  }
  // Trailer lines up to an empty line.
  while (true) {
    size_t eol = rest.find("\r\n");
    if (eol == std::string_view::npos)
      return rest.size() > 1024 ? Parsed(Error::InvalidArgument("trailer too long")) : more();
    if (eol == 0) return std::optional<HttpResponse>(std::move(r));
    rest.remove_prefix(eol + 2);
  }
}

Parsed ParseBody(std::string_view rest, size_t body_limit, bool eof, HttpResponse r) {
  if (r.status == 204 || r.status == 304) return std::optional<HttpResponse>(std::move(r));
  auto te = HttpHeader(r, "transfer-encoding");
  if (te) {
    if (Lower(*te) != "chunked")
      return Error::InvalidArgument("transfer-encoding '" + te->substr(0, 32) + "' not supported");
    return DecodeChunked(rest, body_limit, eof, std::move(r));
  }
  NFC_ASSIGN_OR_RETURN(auto length, ContentLength(r, body_limit));
  if (length) {
    if (rest.size() < *length) {
      if (eof) {
        return Error::InvalidArgument("body truncated: " + std::to_string(rest.size()) + " of " +
                                      std::to_string(*length) + " bytes");
      }
      return std::optional<HttpResponse>();
    }
    r.body = rest.substr(0, *length);
    return std::optional<HttpResponse>(std::move(r));
  }
  if (rest.size() > body_limit) {
    return Error::InvalidArgument("body over the limit of " + std::to_string(body_limit) + " bytes");
  }
  if (!eof) return std::optional<HttpResponse>();
  r.body = rest;
  return std::optional<HttpResponse>(std::move(r));
}

std::string Serialize(const HttpTarget& target, const HttpRequest& req) {
  std::string out = req.method + " " + req.path + " HTTP/1.1\r\nHost: " + target.address +
                    "\r\nUser-Agent: nomad-init\r\nAccept: */*\r\nConnection: close\r\n";
  for (const auto& [name, value] : req.headers) out += name + ": " + value + "\r\n";
  if (req.method != "GET") out += "Content-Length: 0\r\n";
  return out + "\r\n";
}

Status CheckRequest(const HttpRequest& req) {
  auto bad = [](const std::string& s) {
    return std::any_of(s.begin(), s.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
  };
  if (req.path.empty() || req.path.front() != '/' || bad(req.path) ||
      req.path.find(' ') != std::string::npos) {
    return Error::InvalidArgument("request path '" + req.path + "' is not an origin-form path");
  }
  for (const auto& [name, value] : req.headers) {
    if (name.empty() || !std::all_of(name.begin(), name.end(), TokenChar) || bad(value)) {
      return Error::InvalidArgument("request header '" + name + "' has a bad name or value");
    }
  }
  return Status();
}

// Waits for `events` on fd until `deadline`; kTimeout names `what`.
Status WaitFor(int fd, short events, Clock::time_point deadline, const std::string& what) {
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Error::Timeout(what + ": timed out");
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(left));
    if (n > 0) return Status();
    if (n < 0 && errno != EINTR) return Error::Errno(what + ": poll");
  }
}

Result<UniqueFd> Connect(const HttpTarget& t, Clock::time_point deadline, const std::string& where) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(t.port);
  if (inet_pton(AF_INET, t.address.c_str(), &a.sin_addr) != 1) {
    return Error::InvalidArgument("address '" + t.address + "' is not an IPv4 literal");
  }
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!s) return Error::Errno("socket");
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (errno != EINPROGRESS) return Error::Unavailable(where + ": connect: " + std::string(strerror(errno)));
    NFC_RETURN_IF_ERROR(
        WaitFor(s.get(), POLLOUT, std::min(deadline, Clock::now() + t.connect_timeout), where + ": connect"));
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return Error::Unavailable(where + ": connect: " + std::string(strerror(err)));
  }
  return s;
}

}  // namespace

std::optional<std::string> HttpHeader(const HttpResponse& r, std::string_view name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return std::nullopt;
}

Result<std::optional<HttpResponse>> ParseHttpResponse(std::string_view raw, size_t body_limit, bool eof) {
  size_t end = raw.substr(0, kHttpHeaderLimit + 4).find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (raw.size() >= kHttpHeaderLimit + 4) {
      return Error::InvalidArgument("headers longer than " + std::to_string(kHttpHeaderLimit) + " bytes");
    }
    if (eof)
      return Error::InvalidArgument("response ended inside the headers (" + std::to_string(raw.size()) +
                                    " bytes)");
    return std::optional<HttpResponse>();
  }
  std::string_view head = raw.substr(0, end);
  size_t eol = head.find("\r\n");
  HttpResponse r;
  NFC_ASSIGN_OR_RETURN(r.status, ParseStatusLine(head.substr(0, eol)));
  if (eol != std::string_view::npos) NFC_RETURN_IF_ERROR(ParseHeaderLines(head.substr(eol + 2), r));
  return ParseBody(raw.substr(end + 4), body_limit, eof, std::move(r));
}

Result<HttpResponse> HttpDo(const HttpTarget& target, const HttpRequest& request) {
  std::string where =
      request.method + " http://" + target.address + ":" + std::to_string(target.port) + request.path;
  NFC_RETURN_IF_ERROR(CheckRequest(request));
  auto deadline = Clock::now() + target.total_timeout;
  NFC_ASSIGN_OR_RETURN(auto s, Connect(target, deadline, where));
  std::string out = Serialize(target, request);
  for (size_t sent = 0; sent < out.size();) {
    NFC_RETURN_IF_ERROR(WaitFor(s.get(), POLLOUT, deadline, where + ": send"));
    ssize_t n = ::send(s.get(), out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR)
      return Error::Unavailable(where + ": send: " + strerror(errno));
    if (n > 0) sent += static_cast<size_t>(n);
  }
  // Chunk framing adds a few bytes per chunk; anything far past the body limit is refused unread.
  const size_t raw_limit = kHttpHeaderLimit + 4 + target.body_limit + target.body_limit / 2 + 4096;
  std::string raw;
  char buf[16384];
  while (true) {
    NFC_RETURN_IF_ERROR(WaitFor(s.get(), POLLIN, deadline, where + ": response"));
    ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return Error::Unavailable(where + ": recv: " + std::string(strerror(errno)));
    }
    raw.append(buf, static_cast<size_t>(n));
    auto parsed = ParseHttpResponse(raw, target.body_limit, n == 0);
    if (!parsed.ok()) return Error::InvalidArgument(where + ": " + parsed.error().message());
    if (*parsed) return std::move(**parsed);
    if (raw.size() > raw_limit) {
      return Error::InvalidArgument(where + ": response over " + std::to_string(raw_limit) + " bytes");
    }
  }
}

}  // namespace nfc::init::host
