// Differential test of the layer conversion against the tools that make images. A corpus of layer stacks is
// written at test time by GNU tar, bsdtar, Python's tarfile (ustar, gnu, pax), Go's archive/tar, umoci and
// skopeo (compat/make_corpus.py, in a temporary directory); each stack is converted by us (BuildRootfs, read
// back from the ext4 image) and unpacked by `umoci unpack` (Go's archive/tar and a Go applier), and the two
// trees must agree entry by entry: type, mode, owner, link count and hard-link groups, size, content sha256,
// symlink target, device numbers, xattrs and mtime. What may differ is listed below (for every stack) and in
// the corpus (per entry), each with its reason; an expected difference that does not occur fails too, so the
// lists stay true.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "ext4_snapshot.h"
#include "image/docker_archive.h"
#include "image/layer_reader.h"
#include "image/rootfs_builder.h"
#include "require.h"

namespace nfc::image {
namespace {

using json = nlohmann::json;
using testing::TreeEntry;

// Differences by design, for every stack (the per-entry ones are in the corpus).
constexpr const char* kWhyDirTimes =
    "directory mtimes are not compared: a directory no entry describes gets the time of unpacking from umoci "
    "(and containerd), 0 from us; containerd also sets described ones only after the whole layer";
constexpr const char* kWhyTrusted =
    "trusted.* xattrs are dropped by containerd (\"admin attributes from archive not supported\"), umoci "
    "sets them as root; we follow containerd, so umoci's are ignored";
constexpr const char* kWhyRoot =
    "the root directory itself is not compared: containerd ignores entries naming the root, umoci applies "
    "their metadata to its rootfs";

const char* const kStacks[] = {
    "gnutar-gnu",
    "gnutar-posix",
    "gnutar-posix-sparse-0.0",
    "gnutar-posix-sparse-0.1",
    "gnutar-posix-sparse-1.0",
    "gnutar-gnu-sparse",
    "bsdtar-pax",
    "bsdtar-gnutar",
    "python-ustar",
    "python-gnu",
    "python-pax",
    "go-pax",
    "go-gnu",
    "go-ustar",
    "go-noeof",
    "umoci",
    "python-multilayer",
    "skopeo-docker-archive",
    "skopeo-zstd",
    "refuse-escape",
    "refuse-truncated",
};

std::string Which(const std::string& tool) {
  std::string cmd = "command -v " + tool + " 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return "";
  char buf[4096] = {};
  std::string out = fgets(buf, sizeof buf, p) ? buf : "";
  ::pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

struct Totals {
  int stacks = 0, layers = 0, refused = 0;
  uint64_t tar_entries = 0, compared = 0, expected = 0, trusted_ignored = 0;
};

class CompatTest : public ::testing::TestWithParam<const char*> {
 public:
  static void SetUpTestSuite() {
    for (const char* tool : {"tar", "bsdtar", "python3", "umoci", "skopeo"}) {
      if (Which(tool).empty()) missing_ += std::string(missing_.empty() ? "" : ", ") + tool;
    }
    if (::access(NFC_GOLAYERS, X_OK) != 0)
      missing_ += std::string(missing_.empty() ? "" : ", ") + NFC_GOLAYERS;
    if (::geteuid() != 0)
      missing_ += std::string(missing_.empty() ? "" : ", ") + "root (mknod, chown, umoci unpack)";
    if (!missing_.empty()) return;
    char tmpl[] = "/tmp/nfc-compat-test.XXXXXX";
    if (!mkdtemp(tmpl)) {
      setup_error_ = "mkdtemp failed";
      return;
    }
    dir_ = tmpl;
    std::string cmd =
        std::string("python3 ") + NFC_COMPAT_SCRIPT + " '" + dir_ + "/corpus' " + NFC_GOLAYERS + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while (p && (n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int status = p ? ::pclose(p) : -1;
    if (status != 0) {
      setup_error_ = "make_corpus.py failed (" + std::to_string(status) + "): " + out;
      return;
    }
    std::ifstream f(dir_ + "/corpus/corpus.json");
    corpus_ = json::parse(f, nullptr, false);
    if (corpus_.is_discarded()) setup_error_ = "corpus.json does not parse";
  }

  static void TearDownTestSuite() {
    std::printf(
        "compat corpus: %d stacks, %d layers, %llu tar entries; %llu tree entries compared, %llu expected "
        "differences, %llu trusted.* xattrs of umoci ignored, %d stacks refused as expected\n",
        totals_.stacks, totals_.layers, static_cast<unsigned long long>(totals_.tar_entries),
        static_cast<unsigned long long>(totals_.compared), static_cast<unsigned long long>(totals_.expected),
        static_cast<unsigned long long>(totals_.trusted_ignored), totals_.refused);
    std::printf("not compared, by design:\n - %s\n - %s\n - %s\n", kWhyDirTimes, kWhyTrusted, kWhyRoot);
    if (!dir_.empty()) std::system(("rm -rf '" + dir_ + "'").c_str());
  }

 protected:
  void SetUp() override {
    NFC_REQUIRE_OR_SKIP(missing_.empty(), "image_compat_test needs " + missing_);
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
  }

  static const json* Stack(const std::string& name) {
    for (const auto& s : corpus_["stacks"]) {
      if (s["name"] == name) return &s;
    }
    return nullptr;
  }

  // The stack's layers as files: its own, or those of its docker archive (unpacked by our importer).
  static Result<std::vector<LayerFile>> Layers(const json& s, const std::string& work) {
    std::vector<LayerFile> files;
    if (s.contains("docker_archive")) {
      NFC_ASSIGN_OR_RETURN(auto un, UnpackDockerArchive(s["docker_archive"], "", work + "/staging"));
      for (const auto& l : un.manifest.layers) {
        files.push_back(
            {un.blobs_dir + "/sha256/" + l.digest.substr(7), l.digest, static_cast<uint64_t>(l.size)});
      }
      return files;
    }
    for (const auto& l : s["layers"]) {
      std::string path = l;
      files.push_back({path, path.substr(path.find("/corpus/") + 8), 1});
    }
    return files;
  }

  static std::string dir_, missing_, setup_error_;
  static json corpus_;
  static Totals totals_;
};

std::string CompatTest::dir_, CompatTest::missing_, CompatTest::setup_error_;
json CompatTest::corpus_;
Totals CompatTest::totals_;

uint64_t CountEntries(const std::vector<LayerFile>& layers) {
  uint64_t n = 0;
  for (const auto& l : layers) {
    auto r = LayerReader::Open(l.path, l.name);
    TarEntry e;
    while (r.ok() && (*r)->Next(&e).value_or(false)) ++n;
  }
  return n;
}

// Hard links as the set of names of each multiply-linked inode (inode numbers differ between trees).
std::map<std::string, std::string> LinkGroups(const std::map<std::string, TreeEntry>& tree) {
  std::map<uint64_t, std::vector<std::string>> by_ino;
  for (const auto& [path, t] : tree) {
    if (t.type != "dir" && t.nlink > 1) by_ino[t.ino].push_back(path);
  }
  std::map<std::string, std::string> out;
  for (const auto& [ino, paths] : by_ino) {
    std::string joined;
    for (const auto& p : paths) joined += (joined.empty() ? "" : ",") + p;
    for (const auto& p : paths) out[p] = joined;
  }
  return out;
}

std::string Hex(const std::string& v) {
  std::string s;
  char b[3];
  for (unsigned char c : v) {
    std::snprintf(b, sizeof b, "%02x", c);
    s += b;
  }
  return s;
}

// field name -> value, for the fields compared.
std::map<std::string, std::string> Fields(const TreeEntry& t, const std::string& links) {
  std::map<std::string, std::string> f = {
      {"type", t.type},
      {"mode", std::to_string(t.mode)},
      {"owner", std::to_string(t.uid) + ":" + std::to_string(t.gid)},
      {"nlink", std::to_string(t.nlink)},
      {"links", links},
  };
  if (t.type == "file") {
    f["size"] = std::to_string(t.size);
    f["sha256"] = t.sha256;
  }
  if (t.type == "symlink") f["target"] = t.target;
  if (t.type == "chr" || t.type == "blk")
    f["dev"] = std::to_string(t.dev_major) + ":" + std::to_string(t.dev_minor);
  std::string x;
  for (const auto& [k, v] : t.xattrs) x += k + "=" + Hex(v) + " ";
  f["xattrs"] = x;
  if (t.type != "dir")
    f["mtime"] = std::to_string(t.mtime) + "." + std::to_string(t.mtime_nsec);  // kWhyDirTimes
  return f;
}

TEST_P(CompatTest, OursMatchesUmociUnpack) {
  const std::string name = GetParam();
  const json* s = Stack(name);
  ASSERT_NE(s, nullptr) << "make_corpus.py wrote no stack " << name;
  const std::string work = dir_ + "/" + name + "-ours";
  ASSERT_EQ(::mkdir(work.c_str(), 0755), 0);
  auto layers = Layers(*s, work);
  ASSERT_TRUE(layers.ok()) << layers.error().message();
  totals_.stacks++;
  totals_.layers += static_cast<int>(layers->size());
  totals_.tar_entries += CountEntries(*layers);
  const std::string image = work + "/rootfs.ext4";
  auto built = BuildRootfs(*layers, image, "compat");
  if (s->contains("refuse")) {
    ASSERT_FALSE(built.ok()) << name << " must be refused: " << (*s)["why"];
    EXPECT_NE(built.error().message().find((*s)["refuse"].get<std::string>()), std::string::npos)
        << built.error().message();
    EXPECT_NE(built.error().message().find(layers->back().name), std::string::npos)
        << "the error names the layer: " << built.error().message();
    totals_.refused++;
    return;
  }
  ASSERT_TRUE(built.ok()) << built.error().message();
  ASSERT_TRUE(testing::CheckExt4(image).ok()) << testing::CheckExt4(image).error().message();

  std::string reference;
  if (s->contains("oracle")) {
    const json* o = Stack((*s)["oracle"]);
    ASSERT_NE(o, nullptr);
    ASSERT_TRUE((*o)["reference"].is_string())
        << "umoci could not unpack the oracle: " << (*o)["umoci_error"];
    reference = (*o)["reference"];
    if ((*s)["umoci_error"].is_string()) {
      ASSERT_TRUE(s->contains("why")) << "umoci refused " << name << ": " << (*s)["umoci_error"];
      std::printf("%s: umoci refuses it (%s): %s\n", name.c_str(),
                  (*s)["umoci_error"].get<std::string>().c_str(), (*s)["why"].get<std::string>().c_str());
    }
  } else {
    ASSERT_TRUE((*s)["reference"].is_string()) << "umoci unpack failed: " << (*s)["umoci_error"];
    reference = (*s)["reference"];
  }
  auto ours = testing::ReadExt4Tree(image);
  ASSERT_TRUE(ours.ok()) << ours.error().message();
  auto theirs = testing::ReadHostTree(reference);
  ASSERT_TRUE(theirs.ok()) << theirs.error().message();
  for (auto& [path, t] : *theirs) {  // kWhyTrusted
    for (auto it = t.xattrs.begin(); it != t.xattrs.end();) {
      if (it->first.starts_with("trusted.")) {
        it = t.xattrs.erase(it);
        totals_.trusted_ignored++;
      } else {
        ++it;
      }
    }
  }
  std::map<std::pair<std::string, std::string>, bool> expected;  // (path, field or what) -> seen
  for (const auto& e : (*s)["expect"]) {
    expected[{e["path"],
              e["what"] == "field" ? e["field"].get<std::string>() : e["what"].get<std::string>()}] = false;
  }
  auto expect = [&](const std::string& path, const std::string& what) {
    auto it = expected.find({path, what});
    if (it == expected.end()) return false;
    it->second = true;
    return true;
  };
  const auto our_links = LinkGroups(*ours), their_links = LinkGroups(*theirs);
  std::set<std::string> paths;
  for (const auto& [p, _] : *ours) paths.insert(p);
  for (const auto& [p, _] : *theirs) paths.insert(p);
  int compared = 0;
  for (const auto& path : paths) {  // kWhyRoot: neither tree lists "/"
    auto o = ours->find(path), t = theirs->find(path);
    if (t == theirs->end()) {
      EXPECT_TRUE(expect(path, "only-ours")) << name << ": only in ours: " << path;
      continue;
    }
    if (o == ours->end()) {
      EXPECT_TRUE(expect(path, "only-theirs")) << name << ": only in umoci's: " << path;
      continue;
    }
    auto fo = Fields(o->second, our_links.count(path) ? our_links.at(path) : "");
    auto ft = Fields(t->second, their_links.count(path) ? their_links.at(path) : "");
    for (const auto& [field, value] : ft) {
      if (fo[field] == value) continue;
      EXPECT_TRUE(expect(path, field)) << name << ": " << path << ": " << field << " differs: ours \""
                                       << fo[field] << "\", umoci's \"" << value << "\"";
    }
    ++compared;
  }
  for (const auto& [key, seen] : expected) {
    EXPECT_TRUE(seen) << name << ": the expected difference (" << key.first << ", " << key.second
                      << ") did not occur; update make_corpus.py";
  }
  totals_.compared += static_cast<uint64_t>(compared);
  totals_.expected += expected.size();
  std::printf("%s: %d entries compared, %zu expected differences (%s)\n", name.c_str(), compared,
              expected.size(), (*s)["what"].get<std::string>().c_str());
  EXPECT_GT(compared, 5) << "a stack that compares almost nothing tests nothing";
}

INSTANTIATE_TEST_SUITE_P(Corpus, CompatTest, ::testing::ValuesIn(kStacks), [](const auto& info) {
  std::string n = info.param;
  for (auto& c : n) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return n;
});

}  // namespace
}  // namespace nfc::image
