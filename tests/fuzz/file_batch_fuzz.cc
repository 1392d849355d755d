// Both ends' handling of the task directories' FileBatch messages (files::Mirror and its TreeWriter): the
// guest applies what the host sends for /local and /secrets, and the host applies what the guest sends for
// /alloc. The second direction is the one that matters: a root user in the guest can replace nomad-init and
// send any batch, and the host writes it into the allocation directory.
//
// An input is a small script, one command a line (a text format mutates far better than protobuf bytes):
//   host | guest                                  first line: which end applies (default guest)
//   F <path> <mode> <size> <offset> <last> <data>  a file chunk (mode octal; last 0/1; data to the line's
//   end) D <path> <mode>    a directory      L <path> <target>    a symlink      R <path>    a removal O
//   <uid> <gid>      owner of the entries that follow
//   --                 apply the entries so far as one batch
//   ! <path> <data>    this side writes a file itself (a local change, for the host's conflict rule)
//   S                  scan and send this side's changes
// Properties, after every step: nothing outside the root changed (a sibling directory holds a sentinel, and
// the fuzzer may point symlinks at it); the host's end never holds a set-id file; the files below the root,
// temp files of partly received ones included, stay within the byte limit; and a scan right after batches
// that all applied, with no local change, sends nothing back (applying never echoes).
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "files/mirror.h"
#include "files/tree.h"
#include "fuzz_util.h"
#include "guest/agent.pb.h"

namespace {

namespace pb = nfc::guest::v1;
constexpr uint64_t kMaxBytes = 256;  // small, so that a few lines of data can reach it
constexpr std::string_view kSentinel = "must stay";

std::string base_dir;  // <tmp>/root (the mirrored tree) and <tmp>/outside/victim

int RemoveEntry(const char* path, const struct stat* /*st*/, int /*flag*/, struct FTW* /*ftw*/) {
  ::chmod(path, 0700);  // the fuzzer may leave a directory without permission bits; root ignores them anyway
  return ::remove(path) == 0 ? 0 : -1;
}

void RemoveTree(const std::string& path) {
  ::nftw(path.c_str(), RemoveEntry, 16, FTW_DEPTH | FTW_PHYS);
}

std::string ReadSmallFile(const std::string& path) {
  nfc::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return "<missing>";
  char buf[64];
  ssize_t n = ::read(fd.get(), buf, sizeof buf);
  return n < 0 ? "<unreadable>" : std::string(buf, static_cast<size_t>(n));
}

// The world outside the root: exactly the sentinel, unchanged; the base holds only root and outside.
void CheckOutsideUntouched() {
  NFC_FUZZ_CHECK(ReadSmallFile(base_dir + "/outside/victim") == kSentinel);
  struct stat st {};
  NFC_FUZZ_CHECK(::lstat((base_dir + "/outside/victim").c_str(), &st) == 0 && (st.st_mode & 07777) == 0644);
  for (const char* dir : {"", "/outside"}) {
    std::vector<std::string> names;
    nfc::UniqueFd fd(::open((base_dir + dir).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    NFC_FUZZ_CHECK(fd);
    NFC_FUZZ_CHECK(nfc::files::ForEachName(fd.get(), "base", [&](const char* name) {
                     names.emplace_back(name);
                     return nfc::Ok();
                   }).ok());
    NFC_FUZZ_CHECK(names.size() == (*dir != '\0' ? 1U : 2U));
  }
}

uint64_t complete_bytes = 0;  // regular files under their final names
uint64_t temp_bytes = 0;      // files being received
bool setid_found = false;

int Measure(const char* path, const struct stat* st, int flag, struct FTW* ftw) {
  if (flag == FTW_F && S_ISREG(st->st_mode)) {
    bool temp = std::string_view(path + ftw->base).substr(0, nfc::files::kTempPrefix.size()) ==
                nfc::files::kTempPrefix;
    (temp ? temp_bytes : complete_bytes) += static_cast<uint64_t>(st->st_size);
    if ((st->st_mode & (S_ISUID | S_ISGID)) != 0) setid_found = true;
  }
  return 0;
}

// The limit holds for what the tree holds; while a file is replaced its old version stays until the
// rename, so with the files being received the tree may briefly hold up to twice the limit. This side's
// own writes are not the mirror's to limit.
void CheckTree(bool host_end, bool local_writes) {
  complete_bytes = temp_bytes = 0;
  setid_found = false;
  ::nftw((base_dir + "/root").c_str(), Measure, 16, FTW_PHYS);
  if (!local_writes) {
    NFC_FUZZ_CHECK(complete_bytes <= kMaxBytes);
    NFC_FUZZ_CHECK(complete_bytes + temp_bytes <= 2 * kMaxBytes);
  }
  if (host_end) NFC_FUZZ_CHECK(!setid_found);
}

std::string_view NextWord(std::string_view& line) {
  size_t space = line.find(' ');
  std::string_view word = line.substr(0, space);
  line = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
  return word;
}

uint64_t Number(std::string_view word, int base) {
  return std::strtoull(std::string(word).c_str(), nullptr, base);
}

struct Script {
  bool host_end = false;
  uint32_t uid = 0;
  uint32_t gid = 0;
  pb::FileBatch batch;
  bool all_applied = true;  // every batch since the last scan applied, and no local change was made
  bool local_writes = false;
};

void AddEntry(Script& s, char op, std::string_view rest) {
  pb::FileEntry* e = s.batch.add_entries();
  e->set_path(std::string(NextWord(rest)));
  e->set_uid(s.uid);
  e->set_gid(s.gid);
  e->set_mtime_ns(1700000000000000000);
  switch (op) {
    case 'F':
      e->set_kind(pb::FILE_KIND_FILE);
      e->set_mode(static_cast<uint32_t>(Number(NextWord(rest), 8)));
      e->set_size(Number(NextWord(rest), 10));
      e->set_offset(Number(NextWord(rest), 10));
      e->set_last(NextWord(rest) == "1");
      e->set_data(std::string(rest));
      break;
    case 'D':
      e->set_kind(pb::FILE_KIND_DIRECTORY);
      e->set_mode(static_cast<uint32_t>(Number(NextWord(rest), 8)));
      break;
    case 'L':
      e->set_kind(pb::FILE_KIND_SYMLINK);
      e->set_link_target(std::string(rest));
      break;
    default:
      e->set_kind(pb::FILE_KIND_REMOVED);
      break;
  }
}

// A local change, made beneath the root without following symlinks (the test must not escape either).
void WriteLocally(std::string_view rest) {
  std::string path(NextWord(rest));
  if (!nfc::files::CheckRelativePath(path).ok()) return;
  nfc::UniqueFd root(::open((base_dir + "/root").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  std::string leaf;
  auto parent = nfc::files::OpenParentBeneath(root.get(), path, leaf);
  if (!parent.ok()) return;
  nfc::UniqueFd fd(
      ::openat(parent->get(), leaf.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (fd && ::write(fd.get(), rest.data(), rest.size()) < 0) return;
}

void Run(std::string_view input) {
  RemoveTree(base_dir + "/root");
  NFC_FUZZ_CHECK(::mkdir((base_dir + "/root").c_str(), 0755) == 0);
  Script s;
  if (input.substr(0, 5) == "host\n") s.host_end = true;
  nfc::files::Mirror::Options options;
  options.name = s.host_end ? "alloc" : "local";
  options.root = base_dir + "/root";
  options.limits.max_bytes = kMaxBytes;
  options.limits.max_entries = 256;
  if (s.host_end) {
    options.exclude = {"logs"};
    options.local_wins_conflicts = true;
    options.writer.strip_setid = true;
  }
  auto mirror = nfc::files::Mirror::Open(options);
  NFC_FUZZ_CHECK(mirror.ok());
  int steps = 0;
  while (!input.empty() && steps++ < 200) {
    std::string_view line = nfc::fuzz::TakeUntil(input, "\n");
    if (line.empty()) continue;
    char op = line[0];
    std::string_view rest = line.size() > 2 ? line.substr(2) : std::string_view();
    if (op == 'F' || op == 'D' || op == 'L' || op == 'R') {
      AddEntry(s, op, rest);
    } else if (op == 'O') {
      s.uid = static_cast<uint32_t>(Number(NextWord(rest), 10));
      s.gid = static_cast<uint32_t>(Number(NextWord(rest), 10));
    } else if (line == "--") {
      if (!(*mirror)->Apply(s.batch).ok()) s.all_applied = false;
      s.batch.Clear();
    } else if (op == '!') {
      WriteLocally(rest);
      s.all_applied = false;
      s.local_writes = true;
    } else if (op == 'S') {
      std::string sent;
      auto result = (*mirror)->SendChanges([&](pb::FileBatch& b) {
        for (const pb::FileEntry& e : b.entries()) sent += " " + e.path() + ":" + std::to_string(e.kind());
        return nfc::Ok();
      });
      if (s.all_applied && result.ok() && !sent.empty()) std::fprintf(stderr, "echoed: %s\n", sent.c_str());
      if (s.all_applied && result.ok()) NFC_FUZZ_CHECK(sent.empty());
      s.all_applied = true;
    }
    CheckOutsideUntouched();
    CheckTree(s.host_end, s.local_writes);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  char tmpl[] = "/tmp/nfc-fuzz-files-XXXXXX";
  NFC_FUZZ_CHECK(::mkdtemp(tmpl) != nullptr);
  base_dir = tmpl;
  NFC_FUZZ_CHECK(::mkdir((base_dir + "/outside").c_str(), 0755) == 0);
  nfc::UniqueFd fd(
      ::open((base_dir + "/outside/victim").c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  NFC_FUZZ_CHECK(fd && ::write(fd.get(), kSentinel.data(), kSentinel.size()) ==
                           static_cast<ssize_t>(kSentinel.size()));
  ::fchmod(fd.get(), 0644);  // whatever the umask took away
  std::atexit([] { RemoveTree(base_dir); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Run(nfc::fuzz::AsText(data, size));
  return 0;
}
