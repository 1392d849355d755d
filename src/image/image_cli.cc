#include "image/image_cli.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "base/flags.h"
#include "base/fs.h"
#include "image/manifest.h"
#include "image/store.h"

namespace nfc::image {
namespace {

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

// What the command line of one `image` sub-command said.
struct ImageArgs {
  std::string sub;
  std::string data_dir;
  std::string root;  // the deprecated --root: the store itself, not a data directory
  PullOptions pull;
  bool force = false;     // rm
  bool all = false;       // prune
  uint64_t max_size = 0;  // prune
  std::string username;   // pull
  std::vector<std::string> positional;
};

struct SubCommand {
  std::string_view name;
  std::string_view synopsis;  // after the sub-command's name
  std::string_view about;
};

constexpr SubCommand kSubCommands[] = {
    {"pull", "[flags] IMAGE",
     "Pulls IMAGE and converts it into the cache once (the plugin's own pull: same cache, same locks), then "
     "prints its manifest digest and the path of its root filesystem. IMAGE is a registry reference "
     "(alpine:3.19, registry.example.com:5000/app@sha256:...), oci:DIR[:TAG] (an OCI image layout) or "
     "docker-archive:FILE[:NAME:TAG] (docker save output). On a terminal, progress is one redrawn line; "
     "otherwise one line per phase and per 10%."},
    {"ls", "[flags]",
     "Lists the cached images: digest, size on disk, last use, leases (running tasks), references."},
    {"rm", "[flags] IMAGE|DIGEST...",
     "Removes cached images by reference or manifest digest. An image leased by a task is kept unless "
     "--force."},
    {"prune", "[flags]",
     "Removes every image no task leases, and unreferenced blobs; with --max-size, only least recently used "
     "images until the cache fits (as the plugin's image_cache_size limit does after each pull)."},
};

const SubCommand* FindSub(std::string_view name) {
  for (const SubCommand& s : kSubCommands) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::function<Status(const std::string&)> Switch(bool* field) {
  return [field](const std::string&) -> Status {
    *field = true;
    return Ok();
  };
}

// The flags every sub-command takes.
std::vector<flags::Flag> CommonFlags(ImageArgs* a) {
  return {
      {"--data-dir", "", "DIR",
       "the plugin's data directory (plugin option data_dir); the cache is DIR/images, the one the plugin "
       "and "
       "`run --data-dir DIR` use. Default $NFC_DATA_DIR, else /var/lib/nomad-firecracker, the plugin's.",
       flags::NonEmpty(&a->data_dir, "a directory")},
      {"--root", "", "DIR",
       "deprecated: the cache directory itself (what DIR/images is for --data-dir). Prints a warning; use "
       "--data-dir.",
       [a](const std::string& v) -> Status {
         if (v.empty()) return Error::InvalidArgument("expected a directory, not an empty string");
         std::fprintf(stderr,
                      "warning: --root is deprecated; use --data-dir DIR (the cache is DIR/images)\n");
         a->root = v;
         return Ok();
       }},
  };
}

std::vector<flags::Flag> PullFlags(ImageArgs* a) {
  return {
      {"--force-pull", "", "",
       "ask the registry what the tag names now even when the image is cached (task option force_pull); an "
       "unchanged digest reuses the converted image.",
       Switch(&a->pull.force_pull)},
      {"--platform", "", "OS/ARCH[/VARIANT]",
       "the image of a multi-platform index to take, e.g. linux/arm64. Default: this host's.",
       [a](const std::string& v) -> Status {
         if (!ParsePlatform(v).ok())
           return Error::InvalidArgument("expected OS/ARCH[/VARIANT], e.g. linux/amd64");
         a->pull.platform = v;
         return Ok();
       }},
      {"--insecure-registry", "", "HOST[:PORT]",
       "a registry reached over plain HTTP or unverified TLS (plugin option insecure_registries). "
       "Repeatable.",
       [a](const std::string& v) -> Status {
         if (v.empty() || v.find('/') != std::string::npos)
           return Error::InvalidArgument("expected HOST[:PORT]");
         a->pull.insecure_registries.push_back(v);
         return Ok();
       }},
      {"--ca-file", "", "PEM",
       "an extra CA bundle for registries, used with the system's (plugin option ca_file).",
       flags::NonEmpty(&a->pull.ca_file, "a path")},
      {"--username", "", "USER",
       "log in to the registry as USER (task option auth); the password comes from $REGISTRY_PASSWORD, else "
       "the first line of stdin (never from the command line, which ps shows).",
       flags::NonEmpty(&a->username, "a user name")},
      {"--docker-config", "", "FILE",
       "the Docker config.json whose credentials (auths, credHelpers, credsStore) to use. Default "
       "$DOCKER_CONFIG/config.json, else ~/.docker/config.json.",
       flags::NonEmpty(&a->pull.docker_config, "a path")},
  };
}

std::vector<flags::Flag> RmFlags(ImageArgs* a) {
  return {{"--force", "", "", "remove an image even while a task leases it.", Switch(&a->force)}};
}

std::vector<flags::Flag> PruneFlags(ImageArgs* a) {
  return {
      {"--all", "", "", "remove every unleased image (the default without --max-size).", Switch(&a->all)},
      {"--max-size", "", "BYTES",
       "remove least recently used unleased images only until images and blobs take at most BYTES (a whole "
       "number of bytes).",
       [a](const std::string& v) -> Status {
         auto n = flags::ParseWholeNumber(v, 1, INT64_MAX);
         if (!n.ok()) return Error::InvalidArgument("expected a whole number of bytes, at least 1");
         a->max_size = static_cast<uint64_t>(*n);
         return Ok();
       }},
  };
}

// The flags of sub-command `sub`: its own, then the common ones.
std::vector<flags::Flag> SubFlags(std::string_view sub, ImageArgs* a) {
  std::vector<flags::Flag> table = sub == "pull"    ? PullFlags(a)
                                   : sub == "rm"    ? RmFlags(a)
                                   : sub == "prune" ? PruneFlags(a)
                                                    : std::vector<flags::Flag>{};
  for (flags::Flag& f : CommonFlags(a)) table.push_back(std::move(f));
  return table;
}

std::string SubHelp(std::string_view program, const SubCommand& sub) {
  ImageArgs unused;
  std::string text = "usage: " + std::string(program) + " " + std::string(sub.name) + " " +
                     std::string(sub.synopsis) + "\n\n" + flags::Paragraph(sub.about) + "\nFlags:\n";
  text += flags::Describe(SubFlags(sub.name, &unused));
  return text;
}

std::string OverviewHelp(std::string_view program) {
  std::string p(program);
  std::string text = "usage: " + p + " pull|ls|rm|prune [flags] [ARGS]\n\n";
  text += flags::Paragraph(
      "Manages the image cache of a data directory (DIR/images): the one the plugin and `run` use, so an "
      "image pulled here starts without a download and `ls` shows which images tasks lease. Exit code 0, 1 "
      "on "
      "failure, 2 for a bad command line.");
  text += "\n";
  for (const SubCommand& sub : kSubCommands) {
    text += "  " + p + " " + std::string(sub.name) + " " + std::string(sub.synopsis) + "\n";
  }
  for (const SubCommand& sub : kSubCommands) text += "\n" + SubHelp(program, sub);
  return text;
}

std::string DefaultDataDir() {
  const char* env = std::getenv("NFC_DATA_DIR");
  return env && *env ? env : std::string(kDefaultDataDir);
}

// A usage error of sub-command `sub` ("" for `image` itself): the message and a pointer to the help.
int UsageError(std::string_view program, std::string_view sub, std::string_view message) {
  std::string context = "image";
  std::string help(program);
  if (!sub.empty()) {
    context.append(" ").append(sub);
    help.append(" ").append(sub);
  }
  return flags::UsageError(context, message, help);
}

// Fills `out` from args (args[0] is the sub-command). Returns -1 to go on, else the exit code.
int ParseImageArgs(std::string_view program, std::span<char* const> args, ImageArgs& out) {
  out.sub = args[0];
  out.data_dir = DefaultDataDir();
  std::vector<std::string> rest(args.begin() + 1, args.end());
  auto parsed = flags::Parse(SubFlags(out.sub, &out), rest, &out.positional);
  if (!parsed.ok()) return UsageError(program, out.sub, parsed.error().message());
  if (*parsed == flags::Outcome::kHelp) {
    std::fputs(SubHelp(program, *FindSub(out.sub)).c_str(), stdout);
    return 0;
  }
  size_t n = out.positional.size();
  if (out.sub == "pull" && n == 0) return UsageError(program, out.sub, "missing IMAGE");
  if (out.sub == "rm" && n == 0) return UsageError(program, out.sub, "missing IMAGE|DIGEST");
  size_t allowed = out.sub == "pull" ? 1 : out.sub == "rm" ? n : 0;
  if (n > allowed) {
    return UsageError(program, out.sub, "unexpected argument \"" + out.positional[allowed] + "\"");
  }
  return -1;
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

int Pull(Store& store, const ImageArgs& a) {
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

int Remove(Store& store, const ImageArgs& a) {
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

// The store the arguments name: <data dir>/images, or the deprecated --root as given.
Result<std::unique_ptr<Store>> OpenStore(const ImageArgs& a) {
  std::string root = a.root;
  if (root.empty()) {
    // As the plugin does: the data directory is private to root (task directories, credentials).
    NFC_RETURN_IF_ERROR(fs::MakeDirs(a.data_dir, 0700));
    root = StoreRoot(a.data_dir);
  }
  return Store::Open({root, 0, true});
}

}  // namespace

std::string ImageHelp(std::string_view program, std::string_view sub) {
  const SubCommand* s = FindSub(sub);
  return s ? SubHelp(program, *s) : OverviewHelp(program);
}

std::vector<std::string> ImageFlagNames(std::string_view sub) {
  ImageArgs unused;
  return flags::Names(SubFlags(sub, &unused));
}

int RunImageCommand(std::string_view program, std::span<char* const> args) {
  if (args.empty()) return UsageError(program, "", "missing sub-command (pull, ls, rm or prune)");
  std::string_view first = args[0];
  if (first == "--help" || first == "-h") {
    std::fputs(OverviewHelp(program).c_str(), stdout);
    return 0;
  }
  if (!FindSub(first)) {
    return UsageError(
        program, "",
        "unknown sub-command \"" + std::string(first) + "\" (expected pull, ls, rm or prune first)");
  }
  ImageArgs a;
  if (int rc = ParseImageArgs(program, args, a); rc >= 0) return rc;
  if (!a.username.empty()) a.pull.auth = ReadAuth(a.username);
  auto store = OpenStore(a);
  if (!store.ok()) {
    std::fprintf(stderr, "image %s: %s\n", a.sub.c_str(), store.error().message().c_str());
    return 1;
  }
  if (a.sub == "pull") return Pull(**store, a);
  if (a.sub == "ls") return List(**store);
  if (a.sub == "rm") return Remove(**store, a);
  return Prune(**store, a);
}

}  // namespace nfc::image
