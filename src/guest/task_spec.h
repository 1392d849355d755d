// TaskSpec: the versioned description of one task that the host hands to nomad-init (guest role) before boot.
//
// It travels as JSON (`nomad/task.json`) inside a small newc cpio appended to the shared initramfs (see
// initramfs_cpio.h), so the guest needs neither network nor MMDS to learn what to run. The JSON form is
// strict: unknown fields, wrong types and out-of-range values are refused with an error naming the field path
// and value. The guest resolves OCI semantics (entrypoint/cmd overrides, env merge, user lookup in the
// image's own /etc files), so the host passes the image config unchanged next to the task's overrides.
// Format: docs/guest-init.md.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "guest/control_channel.h"  // kDefaultVsockPort, kDefaultSerialPortName

namespace nfc::guest {

inline constexpr int kTaskSpecVersion = 1;
inline constexpr std::string_view kTaskSpecPathInInitramfs = "nomad/task.json";

// What the image says (OCI image config), passed through unchanged.
struct ImageProcess {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;  // "KEY=value"
  std::string working_dir;
  std::string user;  // "name", "uid", "name:group", "uid:gid"
};

// What the task says; each set field overrides the image's.
struct ProcessOverrides {
  std::optional<std::vector<std::string>>
      entrypoint;                                // replaces the image entrypoint (and drops the image cmd)
  std::optional<std::vector<std::string>> args;  // replaces the image cmd
  std::map<std::string, std::string> env;        // merged over the image env
  std::string working_dir;                       // empty: the image's, else "/"
  std::string user;                              // empty: the image's, else root
  std::vector<std::string> groups;               // extra supplementary groups (names or numbers)
  int stop_signal = 15;                          // sent to the workload's process group on a graceful stop
  uint32_t kill_timeout_ms = 5000;               // then SIGKILL
};

struct HostEntry {
  std::string address;
  std::vector<std::string> names;
};

struct DnsConfig {
  std::vector<std::string> servers;
  std::vector<std::string> searches;
  std::vector<std::string> options;
};

struct InterfaceConfig {
  std::string name;                    // guest name, e.g. "eth0"
  std::string mac;                     // optional: find the interface by MAC instead of name ("aa:bb:..")
  uint32_t mtu = 0;                    // 0: leave as is
  std::vector<std::string> addresses;  // CIDR, IPv4 or IPv6: "10.0.0.2/24", "fd00::2/64"
  // Warm start: the MAC the interface has now (its template's). It is found by this one and given `mac`.
  std::string current_mac;
};

struct RouteConfig {
  std::string destination;  // CIDR or "default" (IPv4) / "default6" is not used: write "::/0"
  std::string gateway;      // optional
  std::string device;       // optional when the gateway is on a connected subnet
  uint32_t metric = 0;
};

// A port nomad-init relays inside the guest (TCP and UDP), e.g. 127.0.0.1:<upstream> to the allocation
// namespace's end of the sidecar link (docs/networking.md, "Sidecars"). Both are "IPv4:port".
struct PortForwardConfig {
  std::string listen;
  std::string target;
};

struct NetworkConfig {
  std::vector<InterfaceConfig> interfaces;
  std::vector<RouteConfig> routes;
  std::vector<PortForwardConfig> forwards;  // started after the network is up, before the workload
};

// The image's root filesystem. Exactly one of device (a block device with the read-only image, e.g. /dev/vda)
// or directory (an existing directory: tests, and runs without a VM) is set.
struct RootConfig {
  std::string device;
  std::string fstype = "ext4";
  std::string directory;
};

// Where the overlay's upper and work directories live. A device must already carry a filesystem (the host
// formats scratch disks: nomad-init ships no mkfs); without a device a tmpfs of tmpfs_size is used (writes
// then cost RAM).
struct ScratchConfig {
  std::string device;
  std::string fstype = "ext4";
  std::string tmpfs_size = "50%";
};

struct MountConfig {
  std::string source;  // device path, or a tag for tmpfs
  std::string target;  // absolute path inside the workload's root
  std::string fstype;  // "auto": whatever the device's superblock says (a volume's own filesystem)
  std::vector<std::string> options;  // "ro", "nosuid", "nodev", "noexec", "relatime", or fs-specific "k=v"
};

// A block device of the VM made visible to the workload under another name (a device plugin's device): a
// node with the source's device number at target.
struct DeviceConfig {
  std::string source;  // "/dev/vdc"
  std::string target;  // absolute path inside the workload's root ("/dev/xvdb")
};

struct Rlimit {
  std::string name;  // "nofile", "nproc", "core", "memlock", "stack", ...
  uint64_t soft = 0;
  uint64_t hard = 0;
};

struct ControlConfig {
  uint32_t vsock_port = kDefaultVsockPort;          // 0: no vsock listener
  std::string serial_port{kDefaultSerialPortName};  // virtio-serial port name; empty: none
  std::string unix_socket;                          // listen on this path (tests, no VM)
  uint64_t log_buffer_bytes = 4 << 20;              // per stream; when full the workload's writes block
  // How long to keep the exit result after the workload ended, waiting for the host's acknowledgement, before
  // the VM shuts down anyway. 0 waits forever: the host decides when the VM ends.
  uint32_t exit_ack_timeout_ms = 0;
};

// One of Nomad's task directories, mirrored from the host over the control channel (docs/task-files.md).
struct FileRootConfig {
  std::string name;        // on the wire: "local", "secrets", "alloc" (lower-case letters, digits, '_')
  std::string path;        // absolute path in the workload's root ("/local")
  bool two_way = false;    // what the guest changes there goes back to the host
  std::string tmpfs_size;  // non-empty: a tmpfs of this size ("1m") is mounted there first: never on disk
  uint32_t mode = 0777;    // of the directory itself (Nomad makes its task directories 0777)
  std::vector<std::string> exclude;  // names directly below path that are not mirrored ("logs")
};

struct FilesConfig {
  std::vector<FileRootConfig> roots;       // empty: no task directories, the workload starts at once
  uint32_t initial_timeout_ms = 60000;     // the workload waits this long for the host's first copy
  uint64_t max_bytes = uint64_t{1} << 30;  // per root: the sum of its files' sizes
};

struct TaskSpec {
  int version = kTaskSpecVersion;
  std::string task_id;  // for logs only: "<alloc id>/<task name>"
  ImageProcess image;
  ProcessOverrides process;
  std::string hostname;
  std::vector<HostEntry> hosts;
  std::optional<DnsConfig> dns;  // nullopt: leave the image's /etc/resolv.conf alone
  NetworkConfig network;
  RootConfig root;
  ScratchConfig scratch;
  std::vector<MountConfig> mounts;  // in order, after the root and the system filesystems
  std::vector<DeviceConfig> devices;
  std::vector<Rlimit> rlimits;
  ControlConfig control;
  FilesConfig files;
  bool workload_cgroup = true;  // run the workload in its own cgroup (OOM detection, stats)
  bool debug = false;           // boot timestamps and init's own debug log on the console
  // A warm-start template (docs/warm-start.md): the guest comes up, opens the control channel and waits for
  // its real task (TaskDelivery) instead of starting this spec's workload; only `control` and `debug` apply.
  bool await_task = false;
  // The task config's labels (the docker driver's option): written to kLabelsPath in the workload's root.
  std::map<std::string, std::string> labels;
};

// Where the guest finds its task's labels: one JSON object of strings (absent when the task has none).
inline constexpr const char* kLabelsPath = "/run/nomad/labels.json";

// Strict decoding: every error names the JSON path and the offending value ("process.stop_signal: 99 is not a
// signal number"). Unknown fields are errors, so a typo never silently changes behaviour.
Result<TaskSpec> ParseTaskSpec(std::string_view json);
std::string TaskSpecToJson(const TaskSpec& spec);
// Semantic checks shared by both sides (the host calls it before boot, the guest again after parsing).
Status ValidateTaskSpec(const TaskSpec& spec);

// The workload's argv per OCI rules: a task entrypoint replaces the image's and drops the image cmd; task
// args replace the image cmd. Empty result is an error naming both sources.
Result<std::vector<std::string>> ResolveArgv(const TaskSpec& spec);
// Image env, then task env over it ("KEY=value" list; task keys replace image keys in place, new keys
// appended in name order).
std::vector<std::string> ResolveEnv(const TaskSpec& spec);

}  // namespace nfc::guest
