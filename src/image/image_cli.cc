#include "image/image_cli.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "image/store.h"

namespace nfc::image {
namespace {

constexpr const char* kDefaultRoot = "/var/lib/nomad-driver-firecracker/images";

void Usage(std::string_view program) {
  std::fprintf(
      stderr,
      "usage: %.*s image pull [flags] IMAGE     pull and convert (IMAGE may be oci:DIR[:TAG])\n"
      "       %.*s image ls [--root DIR]\n"
      "       %.*s image rm [--force] IMAGE|DIGEST...\n"
      "       %.*s image prune [--all] [--max-size BYTES]\n"
      "flags: --root DIR (default $NFC_IMAGE_ROOT or %s), --force-pull, --platform OS/ARCH[/VARIANT],\n"
      "       --insecure-registry HOST[:PORT] (repeatable), --ca-file PEM, --username USER\n"
      "       (password from $REGISTRY_PASSWORD or stdin), --docker-config FILE\n",
      static_cast<int>(program.size()), program.data(), static_cast<int>(program.size()), program.data(),
      static_cast<int>(program.size()), program.data(), static_cast<int>(program.size()), program.data(),
      kDefaultRoot);
}

std::string Human(uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

// Progress on a terminal: one redrawn line with a bar, bytes, rate and layers. Otherwise: one line per phase
// change and every 10% of bytes.
class ProgressPrinter {
 public:
  ProgressPrinter() : tty_(::isatty(STDERR_FILENO) == 1), start_(std::chrono::steady_clock::now()) {}
  void operator()(const Progress& p) {
    if (tty_) {
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
      int width = 30;
      int filled =
          p.bytes_total ? static_cast<int>(width * static_cast<double>(p.bytes_done) / p.bytes_total) : 0;
      std::string bar(static_cast<size_t>(std::min(filled, width)), '#');
      bar.resize(static_cast<size_t>(width), '.');
      std::fprintf(stderr, "\r\033[K%-26s [%s] %s/%s %s/s layers %d/%d", p.message.c_str(), bar.c_str(),
                   Human(p.bytes_done).c_str(), Human(p.bytes_total).c_str(),
                   Human(secs > 0 ? static_cast<uint64_t>(p.bytes_done / secs) : 0).c_str(), p.layers_done,
                   p.layers_total);
      if (p.phase == Progress::Phase::kDone) std::fprintf(stderr, "\n");
      return;
    }
    int decile = p.bytes_total ? static_cast<int>(10 * p.bytes_done / p.bytes_total) : 0;
    if (p.phase != last_phase_ || decile != last_decile_) {
      std::fprintf(stderr, "%s: %s of %s (layers %d/%d)\n", p.message.c_str(), Human(p.bytes_done).c_str(),
                   Human(p.bytes_total).c_str(), p.layers_done, p.layers_total);
      last_phase_ = p.phase;
      last_decile_ = decile;
    }
  }

 private:
  bool tty_;
  std::chrono::steady_clock::time_point start_;
  Progress::Phase last_phase_ = Progress::Phase::kDone;
  int last_decile_ = -1;
};

// What the command line of one `image` sub-command said. Every sub-command accepts every flag (they are
// parsed before the sub-command is looked at); each uses its own.
struct ImageArgs {
  std::string sub;
  std::string root;
  PullOptions pull;
  bool force = false;     // rm
  bool all = false;       // prune
  uint64_t max_size = 0;  // prune
  std::string username;   // pull
  std::vector<std::string> positional;
};

constexpr int kUsageError = 2;

// Fills `out` from args[1..]; returns 0, or the exit code after saying what is wrong.
int ParseImageArgs(std::string_view program, std::span<char* const> args, ImageArgs& out) {
  out.sub = args[0];
  out.root = std::getenv("NFC_IMAGE_ROOT") ? std::getenv("NFC_IMAGE_ROOT") : kDefaultRoot;
  const std::map<std::string_view, bool*> switches = {
      {"--force-pull", &out.pull.force_pull}, {"--force", &out.force}, {"--all", &out.all}};
  const std::map<std::string_view, std::function<void(const char*)>> valued = {
      {"--root", [&](const char* v) { out.root = v; }},
      {"--platform", [&](const char* v) { out.pull.platform = v; }},
      {"--insecure-registry", [&](const char* v) { out.pull.insecure_registries.push_back(v); }},
      {"--ca-file", [&](const char* v) { out.pull.ca_file = v; }},
      {"--username", [&](const char* v) { out.username = v; }},
      {"--docker-config", [&](const char* v) { out.pull.docker_config = v; }},
      {"--max-size", [&](const char* v) { out.max_size = std::strtoull(v, nullptr, 10); }},
  };
  for (size_t i = 1; i < args.size(); ++i) {
    std::string a = args[i];
    if (auto sw = switches.find(a); sw != switches.end()) {
      *sw->second = true;
    } else if (auto flag = valued.find(a); flag != valued.end()) {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "image %s: %s needs a value\n", out.sub.c_str(), a.c_str());
        return kUsageError;
      }
      flag->second(args[++i]);
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "image %s: unknown flag %s\n", out.sub.c_str(), a.c_str());
      Usage(program);
      return kUsageError;
    } else {
      out.positional.push_back(a);
    }
  }
  return 0;
}

// The password comes from $REGISTRY_PASSWORD, else the first line of stdin (never from argv, which ps shows).
RegistryAuth ReadAuth(const std::string& username) {
  RegistryAuth auth;
  auth.username = username;
  if (const char* p = std::getenv("REGISTRY_PASSWORD")) {
    auth.password = p;
  } else {
    std::getline(std::cin, auth.password);
  }
  return auth;
}

int Pull(std::string_view program, Store& store, const ImageArgs& a) {
  if (a.positional.size() != 1) {
    Usage(program);
    return kUsageError;
  }
  ProgressPrinter printer;
  auto h = store.Resolve(a.positional[0], a.pull, [&](const Progress& p) { printer(p); });
  if (!h.ok()) {
    std::fprintf(stderr, "image pull: %s\n", h.error().message().c_str());
    return 1;
  }
  std::printf("%s\n%s\n", h->manifest_digest.c_str(), h->rootfs_path.c_str());
  return 0;
}

int List(Store& store) {
  auto list = store.List();
  if (!list.ok()) {
    std::fprintf(stderr, "image ls: %s\n", list.error().message().c_str());
    return 1;
  }
  std::printf("%-19s %-10s %-20s %-8s %s\n", "DIGEST", "SIZE", "LAST USED", "LEASES", "REFERENCES");
  for (const auto& c : *list) {
    char when[32];
    time_t t = c.last_used_unix;
    struct tm tm {};
    gmtime_r(&t, &tm);
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    std::string refs;
    for (const auto& r : c.references) refs += (refs.empty() ? "" : ", ") + r;
    std::printf("%-19s %-10s %-20s %-8zu %s\n", c.manifest_digest.substr(0, 19).c_str(),
                Human(c.disk_bytes).c_str(), when, c.lease_holders.size(), refs.c_str());
  }
  return 0;
}

int Remove(std::string_view program, Store& store, const ImageArgs& a) {
  if (a.positional.empty()) {
    Usage(program);
    return kUsageError;
  }
  int rc = 0;
  for (const auto& p : a.positional) {
    Status s = store.Remove(p, a.force);
    if (!s.ok()) {
      std::fprintf(stderr, "image rm %s: %s\n", p.c_str(), s.error().message().c_str());
      rc = 1;
    } else {
      std::printf("removed %s\n", p.c_str());
    }
  }
  return rc;
}

int Prune(Store& store, const ImageArgs& a) {
  bool all = a.all || a.max_size == 0;  // without a budget, prune means "everything unused"
  auto r = store.Prune(all, a.max_size);
  if (!r.ok()) {
    std::fprintf(stderr, "image prune: %s\n", r.error().message().c_str());
    return 1;
  }
  for (const auto& d : r->removed_images) std::printf("removed %s\n", d.c_str());
  std::printf("removed %zu images and %llu blobs, freed %s\n", r->removed_images.size(),
              static_cast<unsigned long long>(r->removed_blob_count), Human(r->freed_bytes).c_str());
  return 0;
}

}  // namespace

int RunImageCommand(std::string_view program, std::span<char* const> args) {
  if (args.empty()) {
    Usage(program);
    return kUsageError;
  }
  ImageArgs a;
  if (int rc = ParseImageArgs(program, args, a); rc != 0) return rc;
  if (!a.username.empty()) a.pull.auth = ReadAuth(a.username);
  auto store = Store::Open({a.root, 0, true});
  if (!store.ok()) {
    std::fprintf(stderr, "image: %s\n", store.error().message().c_str());
    return 1;
  }
  if (a.sub == "pull") return Pull(program, **store, a);
  if (a.sub == "ls") return List(**store);
  if (a.sub == "rm") return Remove(program, **store, a);
  if (a.sub == "prune") return Prune(**store, a);
  std::fprintf(stderr, "image: unknown subcommand \"%s\"\n", a.sub.c_str());
  Usage(program);
  return kUsageError;
}

}  // namespace nfc::image
