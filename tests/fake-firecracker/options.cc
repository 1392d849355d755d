#include "options.h"

#include <cstdlib>
#include <functional>
#include <iostream>
#include <stdexcept>
#include <vector>

namespace nfc::fakefc {
namespace {

constexpr int kArgumentError = 153;  // Firecracker's exit code for argument parsing errors

// Firecracker's flags that change nothing a test can observe here.
bool IgnoredWithValue(const std::string& a) {
  for (const char* f : {"--seccomp-filter", "--http-api-max-payload-size", "--mmds-size-limit", "--module",
                        "--start-time-us", "--start-time-cpu-us", "--parent-cpu-time-us"}) {
    if (a == f) return true;
  }
  return false;
}

uint32_t Port(const std::string& s) {
  size_t used = 0;
  unsigned long v = std::stoul(s, &used);
  if (used != s.size() || v > 0xffffffffUL) throw std::invalid_argument(s);
  return static_cast<uint32_t>(v);
}

}  // namespace

std::optional<int> ParseOptions(int argc, char** argv, Options* o) {
  // --flag=value is Firecracker's (clap's) other spelling: split it into two words first.
  std::vector<std::string> words;
  for (int k = 1; k < argc; k++) {
    std::string w = argv[k];
    auto eq = w.find('=');
    if (w.rfind("--", 0) == 0 && eq != std::string::npos) {
      words.push_back(w.substr(0, eq));
      words.push_back(w.substr(eq + 1));
    } else {
      words.push_back(w);
    }
  }
  size_t i = 0;
  std::string a;
  auto next = [&]() -> std::string {
    if (i + 1 >= words.size()) throw std::invalid_argument(a + " needs a value");
    return words[++i];
  };
  std::map<std::string, std::function<void()>> handlers = {
      {"--api-sock", [&] { o->api_sock = next(); }},
      {"--no-api", [&] { o->no_api = true; }},
      {"--config-file", [&] { o->config_file = next(); }},
      {"--id", [&] { o->id = next(); }},
      {"--log-path", [&] { o->log_path = next(); }},
      {"--level", [&] { o->level = next(); }},
      {"--show-level", [&] { o->show_level = true; }},
      {"--show-log-origin", [&] { o->show_log_origin = true; }},
      {"--metrics-path", [&] { o->metrics_path = next(); }},
      {"--version", [&] { o->print_version = true; }},
      {"--boot-timer", [] {}},
      {"--no-seccomp", [] {}},
      {"--spec", [&] { o->spec = next(); }},
      {"--record", [&] { o->record = next(); }},
      {"--boot-qemu", [&] { o->boot_qemu = next(); }},
      {"--vsock-relay",
       [&] {
         std::string v = next();
         auto colon = v.find(':');
         if (colon == std::string::npos || colon + 1 == v.size())
           throw std::invalid_argument("--vsock-relay " + v);
         o->vsock_relays[Port(v.substr(0, colon))] = v.substr(colon + 1);
       }},
      {"--guest-listen", [&] { o->guest_listen.insert(Port(next())); }},
      {"--answer-outside-spec", [&] { o->answer_outside_spec = true; }},
      {"--cad-exit", [&] { o->cad_exit = std::stoi(next()); }},
      {"--crash-after-start",
       [&] {
         std::string v = next();
         auto colon = v.find(':');
         o->crash_after_ms = std::stoi(v.substr(0, colon));
         std::string what = colon == std::string::npos ? "2" : v.substr(colon + 1);
         if (what.rfind("sig", 0) == 0) {
           o->crash_signal = std::stoi(what.substr(3));
         } else {
           o->crash_code = std::stoi(what);
         }
       }},
  };
  try {
    for (; i < words.size(); i++) {
      a = words[i];
      if (IgnoredWithValue(a)) {
        next();
        continue;
      }
      auto it = handlers.find(a);
      if (it == handlers.end()) throw std::invalid_argument("unknown argument " + a);
      it->second();
    }
  } catch (const std::exception& e) {
    std::cerr << "fake-firecracker: Arguments parsing error: " << e.what() << "\n";
    return kArgumentError;
  }
  // Tests point the backend at a wrapper script; FAKE_FC_SPEC carries the version through it when the wrapper
  // does not pass --spec.
  if (o->spec.empty()) {
    if (const char* s = std::getenv("FAKE_FC_SPEC")) o->spec = s;
  }
  if (o->spec.empty()) {
    std::cerr << "usage: fake-firecracker --spec YAML [--api-sock PATH] [firecracker options]\n";
    return kArgumentError;
  }
  if (o->no_api && o->config_file.empty()) {
    std::cerr << "fake-firecracker: Arguments parsing error: --no-api requires --config-file\n";
    return kArgumentError;
  }
  return std::nullopt;
}

}  // namespace nfc::fakefc
