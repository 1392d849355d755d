// Host probes the fingerprint needs: where a program is, which version it reports, whether /dev/kvm opens.
// Each probe is bounded in time and never throws; failures come back as text a person can act on.
#pragma once

#include <chrono>
#include <string>

#include "base/error.h"

namespace nfc::driver {

// An absolute path is checked as is; a bare name is searched in $PATH (then /usr/sbin, /sbin, /usr/local/bin
// as Nomad agents often run with a minimal PATH). Must be an executable regular file.
Result<std::string> ResolveProgram(const std::string& name_or_path);

// Runs `<path> --version` (stdin/stderr /dev/null, no inherited fds) and returns the first version-looking
// token of its output ("1.7.0" from "Firecracker v1.7.0", "7.2.15" from "QEMU emulator version 7.2.15
// (...)").
Result<std::string> ProgramVersion(const std::string& path,
                                   std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

// A program looked up and asked for its version: path and version, or what went wrong (empty when found).
struct ProgramProbe {
  std::string path, version;
  std::string problem;
};
ProgramProbe ProbeProgram(const std::string& name_or_path);

// Extracts the first "N.N[.N]" token of `text` (a leading 'v' is dropped). Empty if none.
std::string FirstVersionToken(std::string_view text);

// Whether /dev/kvm exists and opens read-write. This does not prove that guests run well: nested or
// paravirtual KVM can open and still fail to boot a guest (see docs); the VMM backend owns the real boot
// probe.
struct KvmStatus {
  bool present = false;
  bool accessible = false;
  std::string detail;  // why not, when not
};
KvmStatus ProbeKvm(const std::string& device = "/dev/kvm");

// The KVM device the fingerprint probes: /dev/kvm, or $NFC_KVM_DEVICE. The override exists for the
// Firecracker stand-in's tests on machines without KVM (tests/conformance/harness/firecracker.go); a real
// Firecracker opens /dev/kvm itself whatever this says, and fails its start without it.
std::string KvmDevicePath();

// A regular file we can read. Error text names the path and the reason.
Status CheckReadableFile(const std::string& path);

}  // namespace nfc::driver
