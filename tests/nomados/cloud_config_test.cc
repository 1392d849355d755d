// Configuration from the machine instead of the image (docs/nomados.md, "Cloud configuration at boot"): a
// config drive the test makes with mtools, and a metadata service stand-in (metadata_server.py) reached at
// 169.254.169.254 through QEMU's user networking.
#include <fstream>

#include "nomados_vm.h"

namespace nomados_test {
namespace {

// A config drive (vfat labelled cidata, made with mtools) on a second disk: hostname from meta-data, a static
// address from nomados.cmdline, and the agent's config dir = baked agent.hcl + the drive's nomad/ files.
TEST_F(NomadOsBoot, ConfigDrive) {
  std::string drive = kWork + "/cidata.img", src = kWork + "/cidata-src";
  fs::remove(drive);
  fs::remove_all(src);
  fs::create_directories(src + "/nomad");
  std::ofstream(src + "/meta-data") << "instance-id: i-0123\nlocal-hostname: cloud-node-7\n";
  std::ofstream(src + "/nomados.cmdline") << "ip=10.0.2.15::10.0.2.2:255.255.255.0::eth0:off:10.0.2.3\n";
  std::ofstream(src + "/nomad/cloud.hcl") << "server_join { retry_join = [\"10.0.2.2\"] }\n";
  std::ofstream(src + "/nomad/ca.pem") << "-----BEGIN CERTIFICATE-----\n";
  std::vector<std::string> env = {"MTOOLS_SKIP_CHECK=1"};
  for (const auto& cmd : std::vector<std::vector<std::string>>{
           {"mformat", "-C", "-f", "1440", "-v", "cidata", "-i", drive, "::"},
           {"mcopy", "-s", "-i", drive, src + "/meta-data", src + "/nomados.cmdline", src + "/nomad",
            "::/"}}) {
    auto [rc, out] = RunCommand(cmd, env);
    ASSERT_EQ(rc, 0) << cmd[0] << ": " << out;
  }
  Vm vm("config-drive", Overlay(kImageDir + "/nomados.raw", "raw", "config-drive"), Firmware::kBios);
  vm.AddArgs({"-drive", "file=" + drive + ",if=virtio,format=raw,readonly=on"});
  vm.Boot();
  ASSERT_GT(vm.WaitForAgent(240s), 0);
  auto self = vm.Get("/v1/agent/self");
  ASSERT_TRUE(self);
  EXPECT_NE(self->find("\"hostname\":\"cloud-node-7\""), std::string::npos) << *self;
  for (const char* f : {"agent.hcl", "cloud.hcl", "ca.pem"}) {
    EXPECT_NE(self->find(std::string("\"") + f + "\""), std::string::npos) << f << " not in " << *self;
  }
  std::string serial = vm.Serial();
  EXPECT_NE(serial.find("config drive applied"), std::string::npos) << vm.Tail();
  EXPECT_NE(serial.find("instance_id=i-0123"), std::string::npos) << vm.Tail();
  EXPECT_NE(serial.find("network ready (static address from ip=)"), std::string::npos) << vm.Tail();
  EXPECT_EQ(serial.find("config drive /dev/"), std::string::npos) << "a problem was reported:\n" << vm.Tail();
  fs::remove(drive);
  fs::remove_all(src);
}

// Stops the metadata stand-in however the test ends.
struct ServerProcess {
  pid_t pid = -1;
  ~ServerProcess() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      (void)nfc::WaitForExit(pid);
    }
  }
};

// The image with `nomados.metadata=off` (the suite's) turned into `nomados.metadata=ec2` in syslinux.cfg.
std::string ImageWithMetadataOn() {
  std::string raw = kWork + "/metadata.raw", cfg = kWork + "/syslinux.cfg";
  std::vector<std::string> env = {"MTOOLS_SKIP_CHECK=1"};
  fs::remove(cfg);
  auto [rc, out] = RunCommand({"cp", "--sparse=always", kImageDir + "/nomados.raw", raw});
  EXPECT_EQ(rc, 0) << out;
  auto [rc2, out2] = RunCommand({"mcopy", "-i", raw + "@@1M", "::/syslinux/syslinux.cfg", cfg}, env);
  EXPECT_EQ(rc2, 0) << out2;
  std::string text = Slurp(cfg);
  size_t at = text.find("nomados.metadata=off");
  EXPECT_NE(at, std::string::npos) << text;
  if (at == std::string::npos) return raw;
  text.replace(at, 20, "nomados.metadata=ec2");
  std::ofstream(cfg, std::ios::trunc) << text;
  auto [rc3, out3] = RunCommand({"mcopy", "-o", "-i", raw + "@@1M", cfg, "::/syslinux/syslinux.cfg"}, env);
  EXPECT_EQ(rc3, 0) << out3;
  return raw;
}

// No config drive: the metadata service. A stand-in (metadata_server.py, EC2 IMDSv2 style) on a loopback
// port, reached by the guest at 169.254.169.254: QEMU's user network is put on 169.254.169.0/24 (guestfwd
// only serves addresses inside it) and runs the relay for each connection. The user-data names the hostname
// and an agent config file; the agent sees both, and the server saw the token flow.
TEST_F(NomadOsBoot, MetadataService) {
  std::string dir = kWork + "/metadata";
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir + "/user-data") << "#nomados-config\n"
                                       "--- meta-data\n"
                                       "local-hostname: md-node-3\n"
                                       "--- nomad/metadata.hcl\n"
                                       "server_join { retry_join = [\"169.254.169.2\"] }\n";
  ServerProcess server;
  nfc::SpawnOptions o;
  o.argv = {"/usr/bin/python3",
            NOMADOS_METADATA_SERVER,
            "serve",
            "--port-file",
            dir + "/port",
            "--log",
            dir + "/requests.log",
            "--user-data",
            dir + "/user-data",
            "--hostname",
            "ip-169-254-169-15.ec2.internal",
            "--instance-id",
            "i-0feed"};
  auto child = nfc::Spawn(o);
  ASSERT_TRUE(child.ok()) << child.error().message();
  server.pid = child->pid;
  for (auto deadline = Clock::now() + 20s; !fs::exists(dir + "/port") && Clock::now() < deadline;)
    std::this_thread::sleep_for(100ms);
  std::string port = Slurp(dir + "/port");
  ASSERT_FALSE(port.empty()) << "metadata_server.py did not start";

  std::string raw = ImageWithMetadataOn();
  Vm vm("metadata", Overlay(raw, "raw", "metadata"), Firmware::kBios);
  vm.SetNetdevOptions("net=169.254.169.0/24,guestfwd=tcp:169.254.169.254:80-cmd:/usr/bin/python3 " +
                      std::string(NOMADOS_METADATA_SERVER) + " relay " + port);
  vm.Boot();
  ASSERT_GT(vm.WaitForAgent(240s), 0);
  auto self = vm.Get("/v1/agent/self");
  ASSERT_TRUE(self);
  EXPECT_NE(self->find("\"hostname\":\"md-node-3\""), std::string::npos) << *self;
  for (const char* f : {"agent.hcl", "metadata.hcl"}) {
    EXPECT_NE(self->find(std::string("\"") + f + "\""), std::string::npos) << f << " not in " << *self;
  }
  std::string serial = vm.Serial();
  EXPECT_NE(serial.find("metadata service applied"), std::string::npos) << vm.Tail();
  EXPECT_NE(serial.find("instance_id=i-0feed"), std::string::npos) << vm.Tail();
  EXPECT_EQ(serial.find("metadata service http"), std::string::npos) << "a problem was reported:\n"
                                                                     << vm.Tail();
  std::string requests = Slurp(dir + "/requests.log");
  EXPECT_EQ(requests.rfind("PUT /latest/api/token token=issued\n", 0), 0u) << requests;
  EXPECT_NE(requests.find("GET /latest/user-data token=ok"), std::string::npos) << requests;
  EXPECT_NE(requests.find("GET /latest/meta-data/hostname token=ok"), std::string::npos) << requests;
  EXPECT_EQ(requests.find("token=missing"), std::string::npos) << requests;
  EXPECT_EQ(requests.find("token=bad"), std::string::npos) << requests;
  vm.Qmp("system_powerdown");
  EXPECT_EQ(vm.WaitForExit(90s), 0) << vm.Tail();
  fs::remove(raw);
}

}  // namespace
}  // namespace nomados_test
