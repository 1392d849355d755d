#include "init/host/cmdline.h"

#include <arpa/inet.h>

#include <charconv>

namespace nfc::init::host {
namespace {

std::vector<std::string> SplitOn(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    out.emplace_back(s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

bool IsIpv4(const std::string& s) {
  in_addr a;
  return inet_pton(AF_INET, s.c_str(), &a) == 1;
}

Result<int> NetmaskToPrefix(const std::string& mask) {
  in_addr a;
  if (inet_pton(AF_INET, mask.c_str(), &a) != 1)
    return Error::InvalidArgument("netmask '" + mask + "' is not IPv4");
  uint32_t m = ntohl(a.s_addr);
  int prefix = 0;
  while (prefix < 32 && (m & (0x80000000u >> prefix))) prefix++;
  if (prefix < 32 && (m << prefix) != 0)
    return Error::InvalidArgument("netmask '" + mask + "' is not contiguous");
  return prefix;
}

Result<std::chrono::seconds> ParseSeconds(std::string_view key, std::string_view v) {
  long long n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || n < 0 || n > 86400) {
    return Error::InvalidArgument(std::string(key) + "='" + std::string(v) +
                                  "': want whole seconds 0..86400");
  }
  return std::chrono::seconds(n);
}

}  // namespace

std::vector<std::string> SplitCmdline(std::string_view cmdline) {
  std::vector<std::string> words;
  std::string cur;
  bool in_quote = false, have = false;
  for (char c : cmdline) {
    if (c == '"') {
      in_quote = !in_quote;
      have = true;
      continue;
    }
    if (!in_quote && (c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
      if (have) words.push_back(std::move(cur));
      cur.clear();
      have = false;
      continue;
    }
    cur.push_back(c);
    have = true;
  }
  if (have) words.push_back(std::move(cur));
  return words;
}

Result<StaticIp> ParseIpParameter(std::string_view value) {
  auto f = SplitOn(value, ':');
  f.resize(std::max<size_t>(f.size(), 9));
  StaticIp ip;
  ip.address = f[0];
  if (!IsIpv4(ip.address))
    return Error::InvalidArgument("ip='" + std::string(value) + "': client address '" + f[0] +
                                  "' is not IPv4");
  if (!f[2].empty()) {
    if (!IsIpv4(f[2]))
      return Error::InvalidArgument("ip='" + std::string(value) + "': gateway '" + f[2] + "' is not IPv4");
    ip.gateway = f[2];
  }
  if (!f[3].empty()) {
    NFC_ASSIGN_OR_RETURN(ip.prefix_len, NetmaskToPrefix(f[3]));
  }
  ip.hostname = f[4];
  ip.device = f[5];
  if (!f[6].empty() && f[6] != "off" && f[6] != "none" && f[6] != "static") {
    return Error::InvalidArgument("ip='" + std::string(value) + "': autoconf '" + f[6] +
                                  "' with a static address");
  }
  for (int i : {7, 8}) {
    if (f[i].empty()) continue;
    if (!IsIpv4(f[i]))
      return Error::InvalidArgument("ip='" + std::string(value) + "': dns '" + f[i] + "' is not IPv4");
    ip.dns.push_back(f[i]);
  }
  return ip;
}

ParsedHostOptions ParseHostOptions(const std::vector<std::string>& words) {
  ParsedHostOptions parsed;
  HostOptions& o = parsed.options;
  bool system_named = false;
  auto bad = [&](Error e) { parsed.problems.push_back(std::move(e)); };
  for (const auto& word : words) {
    size_t eq = word.find('=');
    std::string key = word.substr(0, eq);
    std::string value = eq == std::string::npos ? "" : word.substr(eq + 1);
    if (key == "ip") {
      if (value == "dhcp" || value == "on" || value == "any" || value.empty()) {
        o.static_ip.reset();
      } else {
        auto ip = ParseIpParameter(value);
        if (ip.ok()) {
          o.static_ip = std::move(ip).value();
        } else {
          bad(std::move(ip).error());
        }
      }
      continue;
    }
    if (key.rfind("nomados.", 0) != 0) continue;
    std::string name = key.substr(8);
    if (name == "system") {
      o.system_partition = value;
      system_named = true;
    } else if (name == "slot") {
      o.slot = ParseSlot(value);
      if (!o.slot) bad(Error::InvalidArgument("nomados.slot='" + value + "': want a or b"));
    } else if (name == "trial" || name == "grow_data") {
      if (value != "0" && value != "1") {
        bad(Error::InvalidArgument("nomados." + name + "='" + value + "': want 0 or 1"));
        continue;
      }
      (name == "trial" ? o.trial : o.grow_data) = value == "1";
    } else if (name == "trial_timeout" || name == "trial_healthy") {
      auto s = ParseSeconds(key, value);
      if (!s.ok()) {
        bad(std::move(s).error());
        continue;
      }
      (name == "trial_timeout" ? o.trial_timeout : o.trial_healthy) = *s;
    } else if (name == "data") {
      o.data_partition = value;
    } else if (name == "hostname") {
      if (value.empty() || value.size() > 64) {
        bad(Error::InvalidArgument("nomados.hostname='" + value + "': want 1..64 characters"));
      } else {
        o.hostname = value;
      }
    } else if (name == "iface") {
      o.interface = value;
    } else if (name == "debug") {
      if (value == "shell") {
        o.debug_shell = true;
      } else {
        bad(Error::InvalidArgument("nomados.debug='" + value + "': the only debug option is 'shell'"));
      }
    } else if (name == "stop_timeout" || name == "net_timeout" || name == "root_timeout") {
      auto s = ParseSeconds(key, value);
      if (!s.ok()) {
        bad(std::move(s).error());
        continue;
      }
      (name == "stop_timeout"  ? o.stop_timeout
       : name == "net_timeout" ? o.network_timeout
                               : o.root_timeout) = *s;
    } else if (name == "loglevel") {
      o.log_level = value;
    } else if (name == "modules") {
      for (auto& m : SplitOn(value, ',')) {
        if (!m.empty()) o.extra_modules.push_back(m);
      }
    } else if (name == "metadata") {
      if (value == "auto" || value == "ec2" || value == "openstack" || value == "off") {
        o.metadata = value;
      } else {
        bad(Error::InvalidArgument("nomados.metadata='" + value + "': want auto, ec2, openstack or off"));
      }
    } else {
      bad(Error::InvalidArgument(
          "unknown kernel command line option '" + key +
          "' (known: nomados.system, data, hostname, iface, debug, stop_timeout, "
          "net_timeout, root_timeout, loglevel, modules, metadata, slot, trial, trial_timeout, "
          "trial_healthy, grow_data; and ip=)"));
    }
  }
  if (o.slot && !system_named) o.system_partition = SystemPartitionName(*o.slot);
  return parsed;
}

}  // namespace nfc::init::host
