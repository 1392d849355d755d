// The stand-in's command line: Firecracker's own flags (vmm.md 1.1) plus the stand-in's, which tests pass
// through a wrapper script that the backend runs as its `firecracker` binary.
//
// Firecracker's: --api-sock, --id, --config-file, --no-api, --version, --log-path, --level, --show-level,
// --show-log-origin, --metrics-path; accepted and without effect here: --boot-timer, --no-seccomp,
// --seccomp-filter, --http-api-max-payload-size, --mmds-size-limit, --module, --start-time-us,
// --start-time-cpu-us, --parent-cpu-time-us.
// The stand-in's: --spec YAML (the API version it plays; or $FAKE_FC_SPEC), --record FILE, --boot-qemu QEMU
// (really boot the guest, guest_machine.h), --vsock-relay PORT:NAME, --guest-listen PORT (an echo service
// instead of a guest), --cad-exit CODE, --crash-after-start MS:CODE|MS:sigN, --answer-outside-spec.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

namespace nfc::fakefc {

struct Options {
  std::string api_sock = "/run/firecracker.socket";
  bool no_api = false;
  std::string config_file;
  std::string spec;
  std::string id = "anonymous-instance";
  std::string record;
  std::string log_path;  // --log-path: the logger configured at startup
  std::string level = "Info";
  bool show_level = false;
  bool show_log_origin = false;
  std::string metrics_path;
  bool print_version = false;
  std::string boot_qemu;                         // empty: the API-only fake (nothing boots)
  std::map<uint32_t, std::string> vsock_relays;  // guest vsock port -> virtio-serial port name
  std::set<uint32_t> guest_listen;
  int cad_exit = -1;
  int crash_after_ms = -1;
  int crash_code = 0;
  int crash_signal = 0;
  bool answer_outside_spec = false;  // self-test of the response check: GET / gains a field the spec lacks
};

// Parses argv; on a bad argument prints Firecracker-style text and returns the exit code to end with (153, an
// argument parsing error, as Firecracker).
std::optional<int> ParseOptions(int argc, char** argv, Options* options);

}  // namespace nfc::fakefc
