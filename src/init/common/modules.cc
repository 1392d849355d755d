#include "init/common/modules.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "base/log.h"
#include "base/unique_fd.h"
#include "init/common/system.h"

namespace nfc::init {
namespace {

void FindKo(const std::string& dir, const std::string& rel, std::vector<std::string>& out) {
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = dir + "/" + name;
    std::string r = rel.empty() ? name : rel + "/" + name;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      FindKo(path, r, out);
    } else if (name.size() > 3 && name.compare(name.size() - 3, 3, ".ko") == 0) {
      out.push_back(r);
    }
  }
  closedir(d);
}

std::string FoldDashes(std::string name) {
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

Result<std::string> ReadWhole(const std::string& path) {
  std::ifstream f(path);
  if (!f) return Error::Errno("open " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

std::string ModuleNameOf(const std::string& path) {
  std::string base = path.substr(path.rfind('/') + 1);
  size_t dot = base.find(".ko");
  if (dot != std::string::npos) base.resize(dot);
  std::replace(base.begin(), base.end(), '-', '_');
  return base;
}

Result<std::vector<std::string>> ModuleLoadOrder(const std::string& modules_dep,
                                                 const std::vector<std::string>& wanted) {
  std::map<std::string, std::vector<std::string>> deps;  // path -> dependency paths
  std::map<std::string, std::string> by_name;
  std::vector<std::string> order_in_file;
  std::istringstream in(modules_dep);
  std::string line;
  while (std::getline(in, line)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string path = line.substr(0, colon);
    std::istringstream rest(line.substr(colon + 1));
    std::vector<std::string> d;
    std::string dep;
    while (rest >> dep) d.push_back(dep);
    deps[path] = d;
    by_name[ModuleNameOf(path)] = path;
    order_in_file.push_back(path);
  }
  std::vector<std::string> roots;
  if (wanted.empty()) {
    roots = order_in_file;
  } else {
    for (const auto& w : wanted) {
      auto it = by_name.find(w);
      if (it == by_name.end()) return Error::NotFound("module " + w + " is not in modules.dep");
      roots.push_back(it->second);
    }
  }
  std::vector<std::string> out;
  std::set<std::string> done, visiting;
  std::function<Status(const std::string&)> visit = [&](const std::string& p) -> Status {
    if (done.count(p)) return Ok();
    if (!visiting.insert(p).second) return Error::InvalidArgument("modules.dep: dependency cycle at " + p);
    auto it = deps.find(p);
    if (it != deps.end()) {
      // depmod lists the transitive dependencies, deepest last; visiting each recursively orders them anyway.
      for (const auto& d : it->second) NFC_RETURN_IF_ERROR(visit(d));
    }
    visiting.erase(p);
    done.insert(p);
    out.push_back(p);
    return Ok();
  };
  for (const auto& r : roots) NFC_RETURN_IF_ERROR(visit(r));
  return out;
}

ModuleLoadReport LoadModules(const std::string& dir, const std::vector<std::string>& fallback_order) {
  ModuleLoadReport report;
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) return report;
  std::vector<std::string> order;
  auto dep = ReadFile(dir + "/modules.dep");
  if (dep.ok()) {
    auto o = ModuleLoadOrder(*dep, {});
    if (o.ok()) {
      order = *o;
    } else {
      report.failed.push_back("modules.dep: " + o.error().ToString());
    }
  }
  if (order.empty()) {
    FindKo(dir, "", order);
    std::sort(order.begin(), order.end(), [&](const std::string& a, const std::string& b) {
      auto rank = [&](const std::string& p) {
        auto it = std::find(fallback_order.begin(), fallback_order.end(), ModuleNameOf(p));
        return it == fallback_order.end() ? fallback_order.size()
                                          : static_cast<size_t>(it - fallback_order.begin());
      };
      return std::make_pair(rank(a), ModuleNameOf(a)) < std::make_pair(rank(b), ModuleNameOf(b));
    });
  }
  for (const auto& rel : order) {
    std::string name = ModuleNameOf(rel);
    if (stat(("/sys/module/" + name).c_str(), &st) == 0) {
      report.already_present.push_back(name);
      continue;
    }
    std::string path = rel[0] == '/' ? rel : dir + "/" + rel;
    // modules.dep of a fuller tree than was shipped here: skip what is not on disk.
    if (dep.ok() && ::access(path.c_str(), F_OK) != 0 && errno == ENOENT) continue;
    auto loaded = LoadModuleFile(path);
    if (!loaded.ok()) {
      report.failed.push_back(name + ": " + loaded.error().message());
    } else if (*loaded) {
      report.loaded.push_back(name);
    } else {
      report.already_present.push_back(name);
    }
  }
  return report;
}

Result<bool> LoadModuleFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Error::Errno("open " + path);
  if (::syscall(SYS_finit_module, fd.get(), "", 0) == 0) return true;
  if (errno == EEXIST) return false;
  return Error::Errno("finit_module " + path);
}

ModuleIndex ModuleIndex::FromText(std::string dir, std::string_view dep, std::string_view alias,
                                  std::string_view builtin) {
  ModuleIndex idx;
  idx.dir_ = std::move(dir);
  std::istringstream deps{std::string(dep)};
  for (std::string line; std::getline(deps, line);) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string path = line.substr(0, colon);
    std::string name = ModuleNameOf(path);
    idx.path_[name] = path;
    std::istringstream rest(line.substr(colon + 1));
    auto& list = idx.deps_[name];
    for (std::string d; rest >> d;) list.push_back(ModuleNameOf(d));
  }
  std::istringstream aliases{std::string(alias)};
  for (std::string line; std::getline(aliases, line);) {
    std::istringstream w(line);
    std::string kw, pattern, module;
    if (!(w >> kw >> pattern >> module) || kw != "alias") continue;
    size_t wild = pattern.find_first_of("*?[");
    idx.aliases_.push_back({pattern, pattern.substr(0, wild), FoldDashes(module)});
  }
  std::istringstream builtins{std::string(builtin)};
  for (std::string line; std::getline(builtins, line);) {
    if (!line.empty()) idx.builtin_.insert(ModuleNameOf(line));
  }
  return idx;
}

Result<ModuleIndex> ModuleIndex::Load(const std::string& dir) {
  NFC_ASSIGN_OR_RETURN(std::string dep, ReadWhole(dir + "/modules.dep"));
  NFC_ASSIGN_OR_RETURN(std::string alias, ReadWhole(dir + "/modules.alias"));
  auto builtin = ReadWhole(dir + "/modules.builtin");  // optional: absent means nothing is listed as built in
  return FromText(dir, dep, alias, builtin.ok() ? *builtin : "");
}

std::vector<std::string> ModuleIndex::Resolve(std::string_view modalias) const {
  std::string s(modalias);
  std::vector<std::string> out;
  for (const auto& a : aliases_) {
    if (s.compare(0, a.literal_prefix.size(), a.literal_prefix) != 0) continue;
    if (fnmatch(a.pattern.c_str(), s.c_str(), 0) != 0) continue;
    if (std::find(out.begin(), out.end(), a.module) == out.end()) out.push_back(a.module);
  }
  return out;
}

Result<std::vector<std::string>> ModuleIndex::LoadOrder(const std::string& module) const {
  std::vector<std::string> order;
  std::set<std::string> seen{module};
  // Depth-first over the dependency lists: each module comes after everything it needs, whatever order
  // depmod happened to list them in.
  std::function<Status(const std::string&)> visit = [&](const std::string& m) -> Status {
    auto it = deps_.find(m);
    if (it == deps_.end()) {
      if (IsBuiltin(m)) return Ok();
      return Error::NotFound("module '" + m + "' is not in " + dir_ + "/modules.dep");
    }
    for (const auto& d : it->second) {
      if (!seen.insert(d).second) continue;
      NFC_RETURN_IF_ERROR(visit(d));
      if (!IsBuiltin(d)) order.push_back(d);
    }
    return Ok();
  };
  NFC_RETURN_IF_ERROR(visit(module));
  return order;
}

std::string ModuleIndex::PathOf(const std::string& module) const {
  auto it = path_.find(module);
  return it == path_.end() ? "" : dir_ + "/" + it->second;
}

Status ModuleLoader::Load(const std::string& raw_name) {
  std::string name = FoldDashes(raw_name);
  if (done_.count(name) || index_.IsBuiltin(name)) return Ok();
  NFC_ASSIGN_OR_RETURN(auto order, index_.LoadOrder(name));
  order.push_back(name);
  for (const auto& m : order) {
    if (done_.count(m)) continue;
    if (::access(("/sys/module/" + m).c_str(), F_OK) == 0) {  // loaded earlier (by the initramfs stage)
      done_.insert(m);
      continue;
    }
    auto loaded = LoadModuleFile(index_.PathOf(m));
    if (!loaded.ok()) return std::move(loaded).error().Context("load module " + name);
    done_.insert(m);
    log::Debug("loaded kernel module", {{"module", m}});
  }
  return Ok();
}

int ModuleLoader::Coldplug(const std::string& sys_devices) {
  int loaded = 0;
  std::set<std::string> tried;
  for (int round = 0; round < 8; round++) {
    int before = loaded;
    for (const auto& alias : ReadModaliases(sys_devices)) {
      for (const auto& m : index_.Resolve(alias)) {
        if (!tried.insert(m).second) continue;
        size_t had = done_.size();
        auto st = Load(m);
        if (!st.ok()) {
          // Drivers for hardware that is absent or unsupported (kvm_amd on Intel, ENODEV) are normal here.
          log::Debug("module not loaded", {{"module", m}, {"error", st.error().message()}});
        }
        loaded += static_cast<int>(done_.size() - had);
      }
    }
    if (loaded == before) break;
  }
  return loaded;
}

std::vector<std::string> ReadModaliases(const std::string& root) {
  std::vector<std::string> out;
  std::function<void(const std::string&, int)> walk = [&](const std::string& dir, int depth) {
    if (depth > 24) return;
    DIR* d = opendir(dir.c_str());
    if (!d) return;
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      std::string path = dir + "/" + name;
      if (e->d_type == DT_DIR) {
        walk(path, depth + 1);
      } else if (e->d_type == DT_REG && name == "modalias") {
        std::ifstream f(path);
        std::string line;
        if (f && std::getline(f, line) && !line.empty()) out.push_back(line);
      }
    }
    closedir(d);
  };
  walk(root, 0);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace nfc::init
