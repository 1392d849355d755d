// Loading kernel modules without modprobe: finit_module(2) on the .ko files below /lib/modules/<release>/,
// each after the modules it depends on. Needed because Debian's cloud kernel builds virtio, overlay and vsock
// as modules and the initramfs carries no busybox (docs/guest-init.md lists them).
//
// Two ways to choose modules: LoadModules() loads every module of a tree (the guest's initramfs ships exactly
// the ones it needs); ModuleIndex + ModuleLoader load what the hardware asks for (a machine we know nothing
// about in advance): without udev, PID 1 does the coldplug itself: every device in /sys exposes a
// `modalias`, modules.alias (written by depmod at image build time) maps alias patterns to module names, and
// modules.dep lists what each module needs first.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/error.h"

namespace nfc::init {

struct ModuleLoadReport {
  std::vector<std::string> loaded;
  std::vector<std::string> already_present;  // built in or loaded before (EEXIST)
  std::vector<std::string> failed;           // "name: error"
};

// Module name of a path: "kernel/drivers/virtio/virtio_blk.ko" -> "virtio_blk" ('-' becomes '_').
std::string ModuleNameOf(const std::string& path);

// Load order for the modules of a modules.dep file ("path: dep dep ...", dependencies first per depmod),
// filtered to `wanted` names when non-empty (their dependencies are always included). Paths are as written in
// the file.
Result<std::vector<std::string>> ModuleLoadOrder(const std::string& modules_dep,
                                                 const std::vector<std::string>& wanted);

// Loads every module listed in <dir>/modules.dep (or, without that file, every *.ko below dir, in the order
// of `fallback_order` first, then by name). A missing dir is not an error (nothing to load).
ModuleLoadReport LoadModules(const std::string& dir, const std::vector<std::string>& fallback_order);

// finit_module(2) on one .ko file (no parameters). Returns false when the kernel already has the module
// (EEXIST).
Result<bool> LoadModuleFile(const std::string& path);

class ModuleIndex {
 public:
  // Reads modules.dep, modules.alias and modules.builtin under dir (e.g. /lib/modules/6.1.0-56-cloud-amd64).
  static Result<ModuleIndex> Load(const std::string& dir);
  // The same, from file contents (for tests).
  static ModuleIndex FromText(std::string dir, std::string_view dep, std::string_view alias,
                              std::string_view builtin);

  // Module names (dashes folded to underscores) whose alias patterns match modalias.
  std::vector<std::string> Resolve(std::string_view modalias) const;
  // Dependencies of module in load order (deepest first), excluding the module itself. Unknown module: error.
  Result<std::vector<std::string>> LoadOrder(const std::string& module) const;
  bool IsBuiltin(const std::string& module) const { return builtin_.count(module) != 0; }
  bool Knows(const std::string& module) const { return path_.count(module) != 0 || IsBuiltin(module); }
  std::string PathOf(const std::string& module) const;

 private:
  struct Alias {
    std::string pattern;
    std::string literal_prefix;  // the pattern up to its first wildcard: a cheap pre-filter before fnmatch
    std::string module;
  };
  std::string dir_;
  std::unordered_map<std::string, std::string> path_;               // module -> path relative to dir_
  std::unordered_map<std::string, std::vector<std::string>> deps_;  // module -> direct and indirect deps
  std::vector<Alias> aliases_;
  std::set<std::string> builtin_;
};

// Loads modules (and their dependencies) once each; remembers what it loaded or found loaded.
class ModuleLoader {
 public:
  explicit ModuleLoader(ModuleIndex index) : index_(std::move(index)) {}

  // Loads one module by name with its dependencies. Already loaded or built in: OK.
  Status Load(const std::string& module);
  // Scans /sys/devices (or root) for modalias files and loads every matching module, repeating while new
  // modules were loaded (a bus driver makes new devices appear). Returns how many modules were loaded.
  // Failures of individual modules (ENODEV for absent hardware, etc.) are logged, not fatal.
  int Coldplug(const std::string& sys_devices = "/sys/devices");

 private:
  ModuleIndex index_;
  std::set<std::string> done_;
};

// Every modalias string found under root (recursive, symlinks not followed), sorted and without duplicates.
std::vector<std::string> ReadModaliases(const std::string& root);

}  // namespace nfc::init
