#include "task/sizing.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

namespace nfc::task {

HostFacts HostFacts::Detect() {
  HostFacts h;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  h.cores = n > 0 ? static_cast<int>(n) : 1;
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("cpu MHz", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) {
        double mhz = std::atof(line.c_str() + colon + 1);
        if (mhz > 0) h.mhz_per_core = mhz;
      }
      break;
    }
  }
  std::ifstream meminfo("/proc/meminfo");
  for (std::string line; std::getline(meminfo, line);) {
    if (line.rfind("MemTotal:", 0) == 0) {
      std::istringstream in(line.substr(9));
      int64_t kib = 0;
      in >> kib;
      h.memory_mib = kib / 1024;
      break;
    }
  }
  return h;
}

Result<int> CountCpuset(const std::string& cpuset) {
  int count = 0;
  std::stringstream in(cpuset);
  for (std::string part; std::getline(in, part, ',');) {
    if (part.empty()) continue;
    auto dash = part.find('-');
    int lo = 0, hi = 0;
    auto parse = [&](std::string_view s, int* v) {
      auto [p, e] = std::from_chars(s.data(), s.data() + s.size(), *v);
      return e == std::errc() && p == s.data() + s.size() && *v >= 0;
    };
    if (dash == std::string::npos) {
      if (!parse(part, &lo))
        return Error::InvalidArgument("cpuset \"" + cpuset + "\": bad CPU \"" + part + "\"");
      hi = lo;
    } else if (!parse(std::string_view(part).substr(0, dash), &lo) ||
               !parse(std::string_view(part).substr(dash + 1), &hi) || hi < lo) {
      return Error::InvalidArgument("cpuset \"" + cpuset + "\": bad range \"" + part + "\"");
    }
    count += hi - lo + 1;
  }
  return count;
}

Result<VmSize> SizeVm(const SizingInput& in, const HostFacts& host) {
  VmSize out;
  if (in.vcpus_config < 0) {
    return Error::InvalidArgument("vcpu_count = " + std::to_string(in.vcpus_config) + ": must be at least 1");
  }
  if (in.vcpus_config > 0) {
    if (in.vcpus_config > host.cores || in.vcpus_config > kMaxVcpus) {
      return Error::InvalidArgument("vcpu_count = " + std::to_string(in.vcpus_config) + ": this host has " +
                                    std::to_string(host.cores) + " CPUs (and a VM at most " +
                                    std::to_string(kMaxVcpus) + ")");
    }
    out.vcpus = in.vcpus_config;
    out.vcpus_from = "task config vcpu_count";
  } else if (!in.cpuset_cpus.empty()) {
    NFC_ASSIGN_OR_RETURN(int n, CountCpuset(in.cpuset_cpus));
    out.vcpus = std::clamp(n, 1, std::min(host.cores, kMaxVcpus));
    out.vcpus_from = "reserved cores";
  } else if (in.cpu_shares_mhz > 0) {
    int n = static_cast<int>(
        std::ceil(static_cast<double>(in.cpu_shares_mhz) / std::max(host.mhz_per_core, 1.0)));
    out.vcpus = std::clamp(n, 1, std::min(host.cores, kMaxVcpus));
    out.vcpus_from = "cpu shares";
  } else {
    out.vcpus = 1;
    out.vcpus_from = "default";
  }

  if (in.memory_config_mib < 0) {
    return Error::InvalidArgument("mem_size = " + std::to_string(in.memory_config_mib) +
                                  ": must be positive");
  }
  if (in.memory_config_mib > 0) {
    out.memory_mib = in.memory_config_mib;
    out.memory_from = "task config mem_size";
  } else if (in.memory_max_mb > 0) {
    out.memory_mib = in.memory_max_mb;
    out.memory_from = "memory_max";
  } else if (in.memory_mb > 0) {
    out.memory_mib = in.memory_mb;
    out.memory_from = "memory";
  } else {
    out.memory_mib = 256;
    out.memory_from = "default";
  }
  if (out.memory_mib < kMinMemoryMiB) {
    if (out.memory_from == "task config mem_size") {
      return Error::InvalidArgument("mem_size = " + std::to_string(out.memory_mib) +
                                    " MiB: a guest needs at least " + std::to_string(kMinMemoryMiB) + " MiB");
    }
    out.memory_mib = kMinMemoryMiB;
    out.memory_from += " (raised to the minimum)";
  }
  if (host.memory_mib > 0 && out.memory_mib > host.memory_mib) {
    std::string field = out.memory_from == "task config mem_size" ? "mem_size" : out.memory_from;
    return Error::InvalidArgument(field + " = " + std::to_string(out.memory_mib) +
                                  " MiB is more than this host's " + std::to_string(host.memory_mib) +
                                  " MiB of memory");
  }
  return out;
}

}  // namespace nfc::task
