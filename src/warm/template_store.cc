// The template directory: <data_dir>/templates/<key>/ holds template.json (what it was built from), the
// template's initramfs and its snapshot. A build runs in .build-<key>/ under <key>.lock and is renamed into
// place when complete, so a directory named by a key is always a whole template.
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "base/log.h"
#include "image/sha256.h"
#include "warm/template.h"
#include "warm/template_boot.h"

namespace nfc::warm {
namespace {

constexpr int kMetadataVersion = 1;
constexpr const char* kMetadataName = "template.json";
constexpr size_t kKeyDigits = 32;

// A file as the key sees it: the same path with other contents (a rebuilt kernel) is another identity.
Result<std::string> FileIdentity(const std::string& field, const std::string& path) {
  struct stat st;
  if (path.empty() || ::stat(path.c_str(), &st) != 0)
    return Error::Errno(field + ": " + (path.empty() ? "(empty)" : path));
  return path + "|" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
         std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec);
}

struct KeyedFile {
  const char* field;
  std::string path;
};

std::vector<KeyedFile> KeyedFiles(const TemplateInputs& in) {
  return {{"vmm_binary", in.vmm_binary},
          {"kernel_path", in.kernel_path},
          {"base_initrd_path", in.base_initrd_path},
          {"rootfs_path", in.rootfs_path}};
}

uint64_t AllocatedBytes(const std::string& dir) {
  uint64_t total = 0;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return 0;
  while (dirent* e = ::readdir(d)) {
    struct stat st;
    std::string path = dir + "/" + e->d_name;
    if (e->d_name[0] != '.' && ::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode))
      total += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  ::closedir(d);
  return total;
}

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return names;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  return names;
}

bool IsKey(const std::string& name) {
  return name.size() == kKeyDigits && name.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// Blocks until this process holds the build lock of `key` (an flock: released if the holder dies).
Result<UniqueFd> LockKey(const std::string& dir, const std::string& key, bool wait) {
  std::string path = dir + "/" + key + ".lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return Error::Errno("open " + path);
  int rc;
  do rc = ::flock(fd.get(), LOCK_EX | (wait ? 0 : LOCK_NB));
  while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    if (errno == EWOULDBLOCK) return Error::Unavailable(path + " is held by a build");
    return Error::Errno("flock " + path);
  }
  return fd;
}

// template.json: the inputs a template was built from, in a form InputsOf reads back (CollectStale recomputes
// the key from them to see whether any file changed).
nlohmann::json Metadata(const std::string& key, const TemplateInputs& in) {
  nlohmann::json files = nlohmann::json::object();
  for (const auto& f : KeyedFiles(in)) files[f.field] = f.path;
  nlohmann::json volumes = nlohmann::json::array();
  for (const auto& v : in.volumes) volumes.push_back({{"bytes", v.bytes}, {"read_only", v.read_only}});
  return {{"version", kMetadataVersion},
          {"key", key},
          {"backend", vmm::BackendName(in.backend)},
          {"files", files},
          {"kernel_args", in.kernel_args},
          {"vcpus", in.vcpus},
          {"memory_mib", in.memory_mib},
          {"image_digest", in.image_digest},
          {"scratch_bytes", in.scratch_bytes},
          {"kvm", in.kvm},
          {"nics", in.nics},
          {"volumes", volumes}};
}

// The inputs of a template.json object with a "files" object; an unknown backend stays QEMU's default and
// then gives another key.
TemplateInputs InputsOf(const nlohmann::json& j) {
  TemplateInputs in;
  if (auto backend = vmm::ParseBackend(j.value("backend", "")); backend.ok()) in.backend = *backend;
  const auto& files = j.at("files");
  in.vmm_binary = files.value("vmm_binary", "");
  in.kernel_path = files.value("kernel_path", "");
  in.base_initrd_path = files.value("base_initrd_path", "");
  in.rootfs_path = files.value("rootfs_path", "");
  in.kernel_args = j.value("kernel_args", std::vector<std::string>{});
  in.vcpus = j.value("vcpus", 0u);
  in.memory_mib = j.value("memory_mib", 0u);
  in.image_digest = j.value("image_digest", "");
  in.scratch_bytes = j.value("scratch_bytes", uint64_t{0});
  in.kvm = j.value("kvm", false);
  in.nics = j.value("nics", 0u);
  for (const auto& v : j.value("volumes", nlohmann::json::array())) {
    if (v.is_object()) in.volumes.push_back({v.value("bytes", uint64_t{0}), v.value("read_only", false)});
  }
  return in;
}

}  // namespace

std::string TemplateMac(size_t index) {
  char mac[18];
  std::snprintf(mac, sizeof mac, "02:fc:00:00:00:%02zx", index & 0xff);
  return mac;
}

Result<std::string> TemplateKey(const TemplateInputs& in) {
  image::Sha256 hash;
  auto add = [&](std::string_view field, std::string_view value) {
    hash.Update(field);
    hash.Update("=", 1);
    hash.Update(std::to_string(value.size()));
    hash.Update(":", 1);
    hash.Update(value);
  };
  add("version", std::to_string(kMetadataVersion));
  add("backend", vmm::BackendName(in.backend));
  for (const auto& f : KeyedFiles(in)) {
    NFC_ASSIGN_OR_RETURN(std::string identity, FileIdentity(f.field, f.path));
    add(f.field, identity);
  }
  for (const auto& arg : in.kernel_args) add("kernel_arg", arg);
  add("vcpus", std::to_string(in.vcpus));
  add("memory_mib", std::to_string(in.memory_mib));
  add("image_digest", in.image_digest);
  add("scratch_bytes", std::to_string(in.scratch_bytes));
  add("kvm", in.kvm ? "1" : "0");
  add("nics", std::to_string(in.nics));
  for (const auto& v : in.volumes) add("volume", std::to_string(v.bytes) + (v.read_only ? ":ro" : ":rw"));
  std::string digest = hash.FinishDigest();  // "sha256:<hex>"
  return digest.substr(digest.find(':') + 1, kKeyDigits);
}

TemplateStore::TemplateStore(std::string data_dir, BootFn boot)
    : dir_(std::move(data_dir) + "/templates"), boot_(boot ? std::move(boot) : BootFn(BootAndSnapshot)) {}

std::optional<Template> TemplateStore::Find(const std::string& key) const {
  if (!IsKey(key)) return std::nullopt;
  std::string dir = dir_ + "/" + key;
  auto text = fs::ReadFile(dir + "/" + kMetadataName, 64 << 10);
  if (!text.ok()) return std::nullopt;
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.value("version", 0) != kMetadataVersion || j.value("key", "") != key)
    return std::nullopt;
  Template t;
  t.key = key;
  t.dir = dir;
  t.snapshot.state_path = dir + "/" + std::string(kStateName);
  if (j.value("memory_file", false)) t.snapshot.memory_path = dir + "/" + std::string(kMemoryName);
  t.initrd_path = dir + "/" + std::string(kInitrdName);
  t.image_digest = j.value("image_digest", "");
  t.build_millis = j.value("build_millis", int64_t{0});
  t.disk_bytes = AllocatedBytes(dir);
  if (!fs::Exists(t.snapshot.state_path) || !fs::Exists(t.initrd_path)) return std::nullopt;
  return t;
}

Result<Template> TemplateStore::Build(const TemplateInputs& inputs, const BuildOptions& options) const {
  NFC_ASSIGN_OR_RETURN(std::string key, TemplateKey(inputs));
  NFC_RETURN_IF_ERROR(fs::MakeDirs(dir_, 0700));
  NFC_ASSIGN_OR_RETURN(UniqueFd lock, LockKey(dir_, key, /*wait=*/true));
  if (auto existing = Find(key)) return *existing;  // built while we waited for the lock
  std::string build = dir_ + "/.build-" + key;
  NFC_RETURN_IF_ERROR(fs::RemoveTree(build));  // an interrupted build's (its lock died with it)
  NFC_RETURN_IF_ERROR(fs::MakeDir(build, 0700));
  auto built = boot_(inputs, build, options);
  if (!built.ok()) {
    (void)fs::RemoveTree(build);  // best effort: the next build of the key removes it too
    return std::move(built).error().Context("build the warm-start template " + key);
  }
  nlohmann::json meta = Metadata(key, inputs);
  meta["memory_file"] = built->memory_file;
  meta["build_millis"] = built->millis;
  std::string final_dir = dir_ + "/" + key;
  Status placed = fs::WriteFileDurably(build + "/" + kMetadataName, meta.dump(2), 0644);
  if (placed.ok()) placed = fs::RemoveTree(final_dir);  // a stale one of the same key (could not load)
  if (placed.ok() && ::rename(build.c_str(), final_dir.c_str()) != 0)
    placed = Error::Errno("rename " + build + " to " + final_dir);
  if (!placed.ok()) {
    (void)fs::RemoveTree(build);
    return std::move(placed).error().Context("store the warm-start template " + key);
  }
  auto t = Find(key);
  if (!t) return Error::Internal("the warm-start template " + key + " vanished after its build");
  log::Info("warm-start template built", {{"key", key},
                                          {"image_digest", inputs.image_digest},
                                          {"millis", built->millis},
                                          {"disk_bytes", t->disk_bytes}});
  return *t;
}

Status TemplateStore::Remove(const std::string& key) const {
  if (!IsKey(key)) return Error::InvalidArgument("template key \"" + key + "\" is not 32 hex digits");
  NFC_ASSIGN_OR_RETURN(UniqueFd lock, LockKey(dir_, key, /*wait=*/true));
  return fs::RemoveTree(dir_ + "/" + key);
}

std::vector<Template> TemplateStore::List() const {
  std::vector<Template> out;
  for (const auto& name : Entries(dir_)) {
    if (auto t = Find(name)) out.push_back(*t);
  }
  return out;
}

Result<int> TemplateStore::CollectStale() const {
  int removed = 0;
  for (const auto& name : Entries(dir_)) {
    bool build_leftover = name.rfind(".build-", 0) == 0;
    std::string key = build_leftover ? name.substr(7) : name;
    if (!IsKey(key)) continue;
    bool stale = build_leftover;
    if (!build_leftover) {
      auto text = fs::ReadFile(dir_ + "/" + name + "/" + kMetadataName, 64 << 10);
      nlohmann::json j = text.ok() ? nlohmann::json::parse(*text, nullptr, false) : nlohmann::json();
      stale = !j.is_object() || !j.contains("files") || !j["files"].is_object();
      // The key hashes the files' identities: recomputing it from what the template recorded says whether
      // any of them is gone or was replaced.
      if (!stale) {
        TemplateInputs in = InputsOf(j);
        auto now = TemplateKey(in);
        stale = !now.ok() || *now != key;
      }
    }
    if (!stale) continue;
    auto lock = LockKey(dir_, key, /*wait=*/false);
    if (!lock.ok()) continue;  // being built (or removed) right now
    NFC_RETURN_IF_ERROR(fs::RemoveTree(dir_ + "/" + name));
    if (!build_leftover) {
      removed++;
      log::Info("removed a stale warm-start template", {{"key", key}});
    }
  }
  return removed;
}

}  // namespace nfc::warm
