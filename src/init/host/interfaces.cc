#include "init/host/interfaces.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace nfc::init::host {
namespace {

std::string ReadLine(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

}  // namespace

std::vector<NetInterface> ListEthernetInterfaces(const std::string& sys_class_net) {
  std::vector<NetInterface> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(sys_class_net, ec)) {
    std::string dir = e.path().string();
    if (ReadLine(dir + "/type") != "1") continue;                 // ARPHRD_ETHER
    if (!std::filesystem::exists(dir + "/device", ec)) continue;  // bridges, veths, tun: not hardware
    NetInterface nic;
    nic.name = e.path().filename().string();
    nic.ifindex = std::atoi(ReadLine(dir + "/ifindex").c_str());
    nic.mac = ReadLine(dir + "/address");
    unsigned v[6];
    if (std::sscanf(nic.mac.c_str(), "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) == 6) {
      for (int i = 0; i < 6; i++) nic.mac_bytes[i] = static_cast<unsigned char>(v[i]);
    }
    out.push_back(std::move(nic));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.ifindex < b.ifindex; });
  return out;
}

}  // namespace nfc::init::host
