#include "base/proc.h"

#include <unistd.h>

#include <charconv>
#include <vector>

#include "base/fs.h"

namespace nfc {
namespace {

// Splits at runs of spaces.
std::vector<std::string_view> Words(std::string_view text) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\n')) i++;
    size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\n') i++;
    if (i > start) out.push_back(text.substr(start, i - start));
  }
  return out;
}

template <typename T>
bool ParseNumber(std::string_view word, T* out) {
  auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), *out);
  return ec == std::errc() && end == word.data() + word.size();
}

}  // namespace

Result<ProcStat> ParseProcStat(std::string_view text, std::string_view source) {
  auto bad = [&](std::string_view what) {
    return Error::DataLoss("malformed " + std::string(source) + ": " + std::string(what));
  };
  // comm (field 2) may contain spaces and parentheses; the kernel adds none after it, so the last ')' ends
  // it.
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open)
    return bad("no (comm)");
  ProcStat st;
  std::vector<std::string_view> head = Words(text.substr(0, open));
  if (head.size() != 1 || !ParseNumber(head[0], &st.pid)) return bad("pid");
  st.comm = std::string(text.substr(open + 1, close - open - 1));
  std::vector<std::string_view> rest = Words(text.substr(close + 1));
  if (rest.size() < 24 - 2) return bad("too few fields");
  auto field = [&](int n) { return rest[static_cast<size_t>(n - 3)]; };  // rest[0] is field 3
  if (field(3).size() != 1) return bad("state \"" + std::string(field(3)) + "\"");
  st.state = field(3)[0];
  int64_t rss = 0;
  if (!ParseNumber(field(4), &st.ppid)) return bad("ppid \"" + std::string(field(4)) + "\"");
  if (!ParseNumber(field(14), &st.utime)) return bad("utime \"" + std::string(field(14)) + "\"");
  if (!ParseNumber(field(15), &st.stime)) return bad("stime \"" + std::string(field(15)) + "\"");
  if (!ParseNumber(field(22), &st.start_time)) return bad("starttime \"" + std::string(field(22)) + "\"");
  if (!ParseNumber(field(24), &rss)) return bad("rss \"" + std::string(field(24)) + "\"");
  st.rss_pages = rss > 0 ? static_cast<uint64_t>(rss) : 0;
  return st;
}

Result<ProcStat> ReadProcStat(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  auto text = fs::ReadFile(path, 4096);
  if (!text.ok()) {
    if (text.error().code() == ErrorCode::kNotFound || text.error().sys_errno() == ESRCH)
      return Error::NotFound("process " + std::to_string(pid) + " does not exist");
    return std::move(text).error();
  }
  return ParseProcStat(*text, path);
}

uint64_t TicksToNanos(uint64_t ticks) {
  static const long hz = sysconf(_SC_CLK_TCK);
  return ticks * (1000000000ULL / static_cast<uint64_t>(hz > 0 ? hz : 100));
}

uint64_t PagesToBytes(uint64_t pages) {
  static const long page = sysconf(_SC_PAGESIZE);
  return pages * static_cast<uint64_t>(page > 0 ? page : 4096);
}

}  // namespace nfc
