#include "guest/task_spec.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

namespace nfc::guest {
namespace {

using json = nlohmann::json;

std::string Show(const json& v) {
  std::string s = v.dump();
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

// Reads one JSON object strictly: every field read is recorded; Finish() refuses the ones nobody read.
class Reader {
 public:
  Reader(const json& object, std::string path) : object_(object), path_(std::move(path)) {}

  static Result<Reader> Open(const json& v, const std::string& path) {
    if (!v.is_object()) return Error::InvalidArgument(Where(path) + "expected an object, got " + Show(v));
    return Reader(v, path);
  }

  std::string Path(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }
  static std::string Where(const std::string& path) { return path.empty() ? "task spec: " : path + ": "; }

  const json* Find(std::string_view key) {
    seen_.insert(std::string(key));
    auto it = object_.find(std::string(key));
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  Status String(std::string_view key, std::string& out) {
    const json* v = Find(key);
    if (!v) return Ok();
    if (!v->is_string()) return Error::InvalidArgument(Path(key) + ": expected a string, got " + Show(*v));
    out = v->get<std::string>();
    return Ok();
  }

  Status Bool(std::string_view key, bool& out) {
    const json* v = Find(key);
    if (!v) return Ok();
    if (!v->is_boolean())
      return Error::InvalidArgument(Path(key) + ": expected true or false, got " + Show(*v));
    out = v->get<bool>();
    return Ok();
  }

  template <typename N>
  Status Unsigned(std::string_view key, N& out, uint64_t max = std::numeric_limits<N>::max()) {
    const json* v = Find(key);
    if (!v) return Ok();
    if (!v->is_number_unsigned() && !(v->is_number_integer() && v->get<int64_t>() >= 0)) {
      return Error::InvalidArgument(Path(key) + ": expected a non-negative integer, got " + Show(*v));
    }
    uint64_t n = v->get<uint64_t>();
    if (n > max)
      return Error::InvalidArgument(Path(key) + ": " + std::to_string(n) + " is larger than " +
                                    std::to_string(max));
    out = static_cast<N>(n);
    return Ok();
  }

  Status StringMap(std::string_view key, std::map<std::string, std::string>& out) {
    const json* v = Find(key);
    if (!v) return Ok();
    if (!v->is_object())
      return Error::InvalidArgument(Path(key) + ": expected an object of strings, got " + Show(*v));
    out.clear();
    for (auto it = v->begin(); it != v->end(); ++it) {
      if (!it->is_string()) {
        return Error::InvalidArgument(Path(key) + "." + it.key() + ": expected a string, got " + Show(*it));
      }
      out[it.key()] = it->get<std::string>();
    }
    return Ok();
  }

  Status Strings(std::string_view key, std::vector<std::string>& out) {
    const json* v = Find(key);
    if (!v) return Ok();
    return StringList(*v, Path(key), out);
  }

  Status OptionalStrings(std::string_view key, std::optional<std::vector<std::string>>& out) {
    const json* v = Find(key);
    if (!v) return Ok();
    std::vector<std::string> list;
    NFC_RETURN_IF_ERROR(StringList(*v, Path(key), list));
    out = std::move(list);
    return Ok();
  }

  static Status StringList(const json& v, const std::string& path, std::vector<std::string>& out) {
    if (!v.is_array()) return Error::InvalidArgument(path + ": expected an array of strings, got " + Show(v));
    out.clear();
    for (size_t i = 0; i < v.size(); i++) {
      if (!v[i].is_string()) {
        return Error::InvalidArgument(path + "[" + std::to_string(i) + "]: expected a string, got " +
                                      Show(v[i]));
      }
      out.push_back(v[i].get<std::string>());
    }
    return Ok();
  }

  Status Finish() const {
    for (auto it = object_.begin(); it != object_.end(); ++it) {
      if (!seen_.count(it.key())) return Error::InvalidArgument(Path(it.key()) + ": unknown field");
    }
    return Ok();
  }

 private:
  const json& object_;
  std::string path_;
  std::set<std::string> seen_;
};

// Runs fn(reader) on the object at key (if present) with strict field checking.
template <typename Fn>
Status Nested(Reader& parent, std::string_view key, Fn fn) {
  const json* v = parent.Find(key);
  if (!v) return Ok();
  NFC_ASSIGN_OR_RETURN(Reader r, Reader::Open(*v, parent.Path(key)));
  NFC_RETURN_IF_ERROR(fn(r));
  return r.Finish();
}

template <typename T, typename Fn>
Status NestedList(Reader& parent, std::string_view key, std::vector<T>& out, Fn fn) {
  const json* v = parent.Find(key);
  if (!v) return Ok();
  std::string path = parent.Path(key);
  if (!v->is_array()) return Error::InvalidArgument(path + ": expected an array, got " + Show(*v));
  out.clear();
  for (size_t i = 0; i < v->size(); i++) {
    NFC_ASSIGN_OR_RETURN(Reader r, Reader::Open((*v)[i], path + "[" + std::to_string(i) + "]"));
    T item;
    NFC_RETURN_IF_ERROR(fn(r, item));
    NFC_RETURN_IF_ERROR(r.Finish());
    out.push_back(std::move(item));
  }
  return Ok();
}

Status CheckVersion(Reader& r) {
  const json* version = r.Find("version");
  if (!version)
    return Error::InvalidArgument("version: missing (this init reads version " +
                                  std::to_string(kTaskSpecVersion) + ")");
  if (!version->is_number_integer() || version->get<int64_t>() != kTaskSpecVersion) {
    return Error::InvalidArgument("version: " + Show(*version) +
                                  " is not supported (this init reads version " +
                                  std::to_string(kTaskSpecVersion) + ")");
  }
  return Ok();
}

Status ReadImage(Reader& o, ImageProcess& image) {
  NFC_RETURN_IF_ERROR(o.Strings("entrypoint", image.entrypoint));
  NFC_RETURN_IF_ERROR(o.Strings("cmd", image.cmd));
  NFC_RETURN_IF_ERROR(o.Strings("env", image.env));
  NFC_RETURN_IF_ERROR(o.String("working_dir", image.working_dir));
  return o.String("user", image.user);
}

Status ReadProcess(Reader& o, ProcessOverrides& p) {
  NFC_RETURN_IF_ERROR(o.OptionalStrings("entrypoint", p.entrypoint));
  NFC_RETURN_IF_ERROR(o.OptionalStrings("args", p.args));
  if (const json* env = o.Find("env")) {
    if (!env->is_object())
      return Error::InvalidArgument("process.env: expected an object of strings, got " + Show(*env));
    for (auto it = env->begin(); it != env->end(); ++it) {
      if (!it->is_string()) {
        return Error::InvalidArgument("process.env." + it.key() + ": expected a string, got " + Show(*it));
      }
      p.env[it.key()] = it->get<std::string>();
    }
  }
  NFC_RETURN_IF_ERROR(o.String("working_dir", p.working_dir));
  NFC_RETURN_IF_ERROR(o.String("user", p.user));
  NFC_RETURN_IF_ERROR(o.Strings("groups", p.groups));
  NFC_RETURN_IF_ERROR(o.Unsigned("stop_signal", p.stop_signal, 64));
  return o.Unsigned("kill_timeout_ms", p.kill_timeout_ms);
}

Status ReadHost(Reader& o, HostEntry& h) {
  NFC_RETURN_IF_ERROR(o.String("address", h.address));
  return o.Strings("names", h.names);
}

Status ReadDns(Reader& o, DnsConfig& dns) {
  NFC_RETURN_IF_ERROR(o.Strings("servers", dns.servers));
  NFC_RETURN_IF_ERROR(o.Strings("searches", dns.searches));
  return o.Strings("options", dns.options);
}

Status ReadInterface(Reader& i, InterfaceConfig& c) {
  NFC_RETURN_IF_ERROR(i.String("name", c.name));
  NFC_RETURN_IF_ERROR(i.String("mac", c.mac));
  NFC_RETURN_IF_ERROR(i.String("current_mac", c.current_mac));
  NFC_RETURN_IF_ERROR(i.Unsigned("mtu", c.mtu, 65535));
  return i.Strings("addresses", c.addresses);
}

Status ReadRoute(Reader& i, RouteConfig& c) {
  NFC_RETURN_IF_ERROR(i.String("destination", c.destination));
  NFC_RETURN_IF_ERROR(i.String("gateway", c.gateway));
  NFC_RETURN_IF_ERROR(i.String("device", c.device));
  return i.Unsigned("metric", c.metric);
}

Status ReadForward(Reader& i, PortForwardConfig& f) {
  NFC_RETURN_IF_ERROR(i.String("listen", f.listen));
  return i.String("target", f.target);
}

Status ReadNetwork(Reader& o, NetworkConfig& network) {
  NFC_RETURN_IF_ERROR(NestedList(o, "interfaces", network.interfaces, ReadInterface));
  NFC_RETURN_IF_ERROR(NestedList(o, "forwards", network.forwards, ReadForward));
  return NestedList(o, "routes", network.routes, ReadRoute);
}

Status ReadRoot(Reader& o, RootConfig& root) {
  NFC_RETURN_IF_ERROR(o.String("device", root.device));
  NFC_RETURN_IF_ERROR(o.String("fstype", root.fstype));
  return o.String("directory", root.directory);
}

Status ReadScratch(Reader& o, ScratchConfig& scratch) {
  NFC_RETURN_IF_ERROR(o.String("device", scratch.device));
  NFC_RETURN_IF_ERROR(o.String("fstype", scratch.fstype));
  return o.String("tmpfs_size", scratch.tmpfs_size);
}

Status ReadMount(Reader& o, MountConfig& m) {
  NFC_RETURN_IF_ERROR(o.String("source", m.source));
  NFC_RETURN_IF_ERROR(o.String("target", m.target));
  NFC_RETURN_IF_ERROR(o.String("fstype", m.fstype));
  return o.Strings("options", m.options);
}

Status ReadDevice(Reader& o, DeviceConfig& d) {
  NFC_RETURN_IF_ERROR(o.String("source", d.source));
  return o.String("target", d.target);
}

Status ReadRlimit(Reader& o, Rlimit& l) {
  NFC_RETURN_IF_ERROR(o.String("name", l.name));
  NFC_RETURN_IF_ERROR(o.Unsigned("soft", l.soft));
  return o.Unsigned("hard", l.hard);
}

Status ReadControl(Reader& o, ControlConfig& c) {
  NFC_RETURN_IF_ERROR(o.Unsigned("vsock_port", c.vsock_port));
  NFC_RETURN_IF_ERROR(o.String("serial_port", c.serial_port));
  NFC_RETURN_IF_ERROR(o.String("unix_socket", c.unix_socket));
  NFC_RETURN_IF_ERROR(o.Unsigned("log_buffer_bytes", c.log_buffer_bytes));
  return o.Unsigned("exit_ack_timeout_ms", c.exit_ack_timeout_ms);
}

Status ReadFileRoot(Reader& o, FileRootConfig& f) {
  NFC_RETURN_IF_ERROR(o.String("name", f.name));
  NFC_RETURN_IF_ERROR(o.String("path", f.path));
  NFC_RETURN_IF_ERROR(o.Bool("two_way", f.two_way));
  NFC_RETURN_IF_ERROR(o.String("tmpfs_size", f.tmpfs_size));
  NFC_RETURN_IF_ERROR(o.Strings("exclude", f.exclude));
  return o.Unsigned("mode", f.mode, 07777);
}

Status ReadFiles(Reader& o, FilesConfig& f) {
  NFC_RETURN_IF_ERROR(NestedList(o, "roots", f.roots, ReadFileRoot));
  NFC_RETURN_IF_ERROR(o.Unsigned("initial_timeout_ms", f.initial_timeout_ms));
  return o.Unsigned("max_bytes", f.max_bytes);
}

Status ParseInto(const json& doc, TaskSpec& s) {
  NFC_ASSIGN_OR_RETURN(Reader r, Reader::Open(doc, ""));
  NFC_RETURN_IF_ERROR(CheckVersion(r));
  NFC_RETURN_IF_ERROR(r.String("task_id", s.task_id));
  NFC_RETURN_IF_ERROR(Nested(r, "image", [&](Reader& o) { return ReadImage(o, s.image); }));
  NFC_RETURN_IF_ERROR(Nested(r, "process", [&](Reader& o) { return ReadProcess(o, s.process); }));
  NFC_RETURN_IF_ERROR(r.String("hostname", s.hostname));
  NFC_RETURN_IF_ERROR(NestedList(r, "hosts", s.hosts, ReadHost));
  if (r.Find("dns")) {
    s.dns.emplace();
    NFC_RETURN_IF_ERROR(Nested(r, "dns", [&](Reader& o) { return ReadDns(o, *s.dns); }));
  }
  NFC_RETURN_IF_ERROR(Nested(r, "network", [&](Reader& o) { return ReadNetwork(o, s.network); }));
  NFC_RETURN_IF_ERROR(Nested(r, "root", [&](Reader& o) { return ReadRoot(o, s.root); }));
  NFC_RETURN_IF_ERROR(Nested(r, "scratch", [&](Reader& o) { return ReadScratch(o, s.scratch); }));
  NFC_RETURN_IF_ERROR(NestedList(r, "mounts", s.mounts, ReadMount));
  NFC_RETURN_IF_ERROR(NestedList(r, "devices", s.devices, ReadDevice));
  NFC_RETURN_IF_ERROR(NestedList(r, "rlimits", s.rlimits, ReadRlimit));
  NFC_RETURN_IF_ERROR(Nested(r, "control", [&](Reader& o) { return ReadControl(o, s.control); }));
  NFC_RETURN_IF_ERROR(Nested(r, "files", [&](Reader& o) { return ReadFiles(o, s.files); }));
  NFC_RETURN_IF_ERROR(r.Bool("workload_cgroup", s.workload_cgroup));
  NFC_RETURN_IF_ERROR(r.Bool("debug", s.debug));
  NFC_RETURN_IF_ERROR(r.Bool("await_task", s.await_task));
  NFC_RETURN_IF_ERROR(r.StringMap("labels", s.labels));
  return r.Finish();
}

}  // namespace

Result<TaskSpec> ParseTaskSpec(std::string_view text) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number past double (1e400)
    return Error::InvalidArgument(std::string("task spec is not valid JSON: ") + e.what());
  }
  TaskSpec spec;
  try {
    NFC_RETURN_IF_ERROR(ParseInto(doc, spec));
  } catch (const json::exception& e) {
    return Error::InvalidArgument(std::string("task spec: ") + e.what());
  }
  NFC_RETURN_IF_ERROR(ValidateTaskSpec(spec));
  return spec;
}

std::string TaskSpecToJson(const TaskSpec& s) {
  json j;
  j["version"] = s.version;
  if (!s.task_id.empty()) j["task_id"] = s.task_id;
  j["image"] = {{"entrypoint", s.image.entrypoint},
                {"cmd", s.image.cmd},
                {"env", s.image.env},
                {"working_dir", s.image.working_dir},
                {"user", s.image.user}};
  json p = json::object();
  if (s.process.entrypoint) p["entrypoint"] = *s.process.entrypoint;
  if (s.process.args) p["args"] = *s.process.args;
  p["env"] = s.process.env;
  p["working_dir"] = s.process.working_dir;
  p["user"] = s.process.user;
  p["groups"] = s.process.groups;
  p["stop_signal"] = s.process.stop_signal;
  p["kill_timeout_ms"] = s.process.kill_timeout_ms;
  j["process"] = p;
  j["hostname"] = s.hostname;
  if (!s.labels.empty()) j["labels"] = s.labels;
  j["hosts"] = json::array();
  for (const auto& h : s.hosts) j["hosts"].push_back({{"address", h.address}, {"names", h.names}});
  if (s.dns)
    j["dns"] = {{"servers", s.dns->servers}, {"searches", s.dns->searches}, {"options", s.dns->options}};
  json net = {{"interfaces", json::array()}, {"routes", json::array()}};
  for (const auto& i : s.network.interfaces) {
    json itf = {{"name", i.name}, {"mac", i.mac}, {"mtu", i.mtu}, {"addresses", i.addresses}};
    if (!i.current_mac.empty()) itf["current_mac"] = i.current_mac;
    net["interfaces"].push_back(std::move(itf));
  }
  for (const auto& r : s.network.routes) {
    net["routes"].push_back(
        {{"destination", r.destination}, {"gateway", r.gateway}, {"device", r.device}, {"metric", r.metric}});
  }
  for (const auto& f : s.network.forwards)
    net["forwards"].push_back({{"listen", f.listen}, {"target", f.target}});
  j["network"] = net;
  j["root"] = {{"device", s.root.device}, {"fstype", s.root.fstype}, {"directory", s.root.directory}};
  j["scratch"] = {
      {"device", s.scratch.device}, {"fstype", s.scratch.fstype}, {"tmpfs_size", s.scratch.tmpfs_size}};
  j["mounts"] = json::array();
  for (const auto& m : s.mounts) {
    j["mounts"].push_back(
        {{"source", m.source}, {"target", m.target}, {"fstype", m.fstype}, {"options", m.options}});
  }
  j["devices"] = json::array();
  for (const auto& d : s.devices) j["devices"].push_back({{"source", d.source}, {"target", d.target}});
  j["rlimits"] = json::array();
  for (const auto& l : s.rlimits)
    j["rlimits"].push_back({{"name", l.name}, {"soft", l.soft}, {"hard", l.hard}});
  j["control"] = {{"vsock_port", s.control.vsock_port},
                  {"serial_port", s.control.serial_port},
                  {"unix_socket", s.control.unix_socket},
                  {"log_buffer_bytes", s.control.log_buffer_bytes},
                  {"exit_ack_timeout_ms", s.control.exit_ack_timeout_ms}};
  j["files"] = {{"roots", json::array()},
                {"initial_timeout_ms", s.files.initial_timeout_ms},
                {"max_bytes", s.files.max_bytes}};
  for (const auto& f : s.files.roots) {
    j["files"]["roots"].push_back({{"name", f.name},
                                   {"path", f.path},
                                   {"two_way", f.two_way},
                                   {"tmpfs_size", f.tmpfs_size},
                                   {"mode", f.mode},
                                   {"exclude", f.exclude}});
  }
  j["workload_cgroup"] = s.workload_cgroup;
  j["debug"] = s.debug;
  if (s.await_task) j["await_task"] = true;
  return j.dump(2);
}

Result<std::vector<std::string>> ResolveArgv(const TaskSpec& s) {
  std::vector<std::string> argv;
  if (s.process.entrypoint) {
    argv = *s.process.entrypoint;
    if (s.process.args) argv.insert(argv.end(), s.process.args->begin(), s.process.args->end());
  } else {
    argv = s.image.entrypoint;
    const auto& cmd = s.process.args ? *s.process.args : s.image.cmd;
    argv.insert(argv.end(), cmd.begin(), cmd.end());
  }
  if (argv.empty() || argv[0].empty()) {
    return Error::InvalidArgument(
        "no command to run: the image has no entrypoint or cmd and the task sets neither "
        "process.entrypoint nor process.args");
  }
  return argv;
}

std::vector<std::string> ResolveEnv(const TaskSpec& s) {
  std::vector<std::string> env;
  std::set<std::string> overridden;
  for (const auto& kv : s.image.env) {
    std::string key = kv.substr(0, kv.find('='));
    auto it = s.process.env.find(key);
    if (it != s.process.env.end()) {
      if (overridden.insert(key).second) env.push_back(key + "=" + it->second);
    } else {
      env.push_back(kv);
    }
  }
  for (const auto& [key, value] : s.process.env) {
    if (!overridden.count(key)) env.push_back(key + "=" + value);
  }
  return env;
}

}  // namespace nfc::guest
