// Kernel modules for a machine we know nothing about in advance: load what the hardware asks for.
//
// NomadOS ships Debian's kernel, where storage, NIC, ACPI-button and KVM drivers are modules. Without udev,
// PID 1 does the coldplug itself: every device in /sys exposes a `modalias`; modules.alias (written by depmod
// at image build time) maps alias patterns to module names; modules.dep lists what each module needs first.
// Modules are loaded with finit_module(2) from /lib/modules/<uname -r>/ (Debian 12 ships them uncompressed).
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/error.h"

namespace nfc::init::host {

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

// Every modalias string found under root (recursive, symlinks not followed).
std::vector<std::string> ReadModaliases(const std::string& root);

}  // namespace nfc::init::host
