#include "init/common/modules.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <sstream>

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
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && dep.ok()) continue;  // modules.dep of a fuller tree: not shipped here
    if (fd < 0) {
      report.failed.push_back(name + ": open " + path + ": " + strerror(errno));
      continue;
    }
    long r = syscall(SYS_finit_module, fd, "", 0);
    int err = errno;
    close(fd);
    if (r == 0) {
      report.loaded.push_back(name);
    } else if (err == EEXIST) {
      report.already_present.push_back(name);
    } else {
      report.failed.push_back(name + ": finit_module: " + strerror(err));
    }
  }
  return report;
}

}  // namespace nfc::init
