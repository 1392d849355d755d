// The CLI as a person meets it: each command's --help (and `help COMMAND`) names every flag its parser
// accepts, bad flags and values name themselves with a pointer to the help and exit 2, and `image` and `run`
// share the data directory's image cache. Runs the built binary; the flag lists come from the commands'
// tables (command.h), so a flag missing from a help text fails here.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/process.h"
#include "base/unique_fd.h"
#include "cli/command.h"
#include "driver/plugin_config.h"
#include "driver/task_config.h"
#include "image/image_cli.h"
#include "image/store.h"
#include "require.h"
#include "temp_dir.h"
#include "test_layers.h"

namespace nfc::cli {
namespace {

struct Ran {
  int exit_code = -1;
  std::string out, err;
};

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs the binary with `args` (bounded to 60 s), stdout and stderr captured apart.
Ran RunCli(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
  test_support::TempDir dir("cli-out");
  UniqueFd out(::open(dir.Path("out").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  UniqueFd err(::open(dir.Path("err").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  SpawnOptions o;
  o.argv = {"env", "-u", "NOMAD_PLUGIN_MAGIC_COOKIE", "-u", "NFC_DATA_DIR"};
  o.argv.insert(o.argv.end(), env.begin(), env.end());
  o.argv.insert(o.argv.end(), {"timeout", "60", NFC_PLUGIN_BINARY});
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.stdout_fd = out.get();
  o.stderr_fd = err.get();
  Ran ran;
  auto child = Spawn(o);
  if (!child.ok()) {
    ADD_FAILURE() << child.error().message();
    return ran;
  }
  auto status = WaitForExit(child->pid);
  if (status.ok() && WIFEXITED(*status)) ran.exit_code = WEXITSTATUS(*status);
  ran.out = Slurp(dir.Path("out"));
  ran.err = Slurp(dir.Path("err"));
  return ran;
}

struct Topic {
  std::string command;
  std::vector<std::string> topic;  // image's sub-command
};

std::vector<Topic> EveryHelpTopic() {
  return {{"version", {}},   {"run", {}},          {"image", {}}, {"image", {"pull"}}, {"image", {"ls"}},
          {"image", {"rm"}}, {"image", {"prune"}}, {"ps", {}},    {"logs", {}},        {"doctor", {}}};
}

const Command* Find(const std::string& name) {
  for (const Command* c : Commands()) {
    if (c->name == name) return c;
  }
  return nullptr;
}

// Whether `flag` appears in `text` as a flag of a help line: "  --flag", "  -f, --flag", "--flag VALUE".
bool Mentions(const std::string& text, const std::string& flag) {
  for (size_t at = text.find(flag); at != std::string::npos; at = text.find(flag, at + 1)) {
    bool starts = at > 0 && (text[at - 1] == ' ' || text[at - 1] == '[');
    char next = at + flag.size() < text.size() ? text[at + flag.size()] : '\n';
    bool ends = next == ' ' || next == ',' || next == '\n' || next == ']';
    if (starts && ends) return true;
  }
  return false;
}

TEST(CliHelpTest, EveryCommandHasATopicHere) {
  std::vector<Topic> topics = EveryHelpTopic();
  for (const Command* c : Commands()) {
    bool found = false;
    for (const Topic& t : topics) found = found || t.command == c->name;
    EXPECT_TRUE(found) << "command " << c->name << " has no help test";
  }
}

TEST(CliHelpTest, EachCommandsHelpNamesEveryFlagItsParserTakes) {
  for (const Topic& t : EveryHelpTopic()) {
    const Command* c = Find(t.command);
    ASSERT_NE(c, nullptr) << t.command;
    std::vector<std::string> args = {t.command};
    args.insert(args.end(), t.topic.begin(), t.topic.end());
    std::string label = args.size() > 1 ? t.command + " " + args[1] : t.command;
    args.push_back("--help");
    Ran ran = RunCli(args);
    EXPECT_EQ(ran.exit_code, 0) << label << ": " << ran.err;
    EXPECT_EQ(ran.err, "") << label;
    EXPECT_NE(ran.out.find("usage: "), std::string::npos) << label << ": " << ran.out;
    std::vector<std::string> names = c->flag_names(t.topic);
    if (t.command != "version") {
      EXPECT_FALSE(names.empty()) << label;
    }
    for (const std::string& flag : names)
      EXPECT_TRUE(Mentions(ran.out, flag)) << label << " --help: " << flag;
    // -h and `help COMMAND [TOPIC]` print the same text.
    args.back() = "-h";
    EXPECT_EQ(RunCli(args).out, ran.out) << label << " -h";
    std::vector<std::string> help = {"help", t.command};
    help.insert(help.end(), t.topic.begin(), t.topic.end());
    Ran via_help = RunCli(help);
    EXPECT_EQ(via_help.exit_code, 0) << label;
    EXPECT_EQ(via_help.out, ran.out) << "help " << label;
  }
}

TEST(CliHelpTest, ImageHelpCoversEverySubCommandsFlags) {
  Ran ran = RunCli({"image", "--help"});
  ASSERT_EQ(ran.exit_code, 0);
  for (const char* sub : {"pull", "ls", "rm", "prune"}) {
    for (const std::string& flag : image::ImageFlagNames(sub)) {
      EXPECT_TRUE(Mentions(ran.out, flag)) << "image --help: " << sub << " " << flag;
    }
  }
}

TEST(CliHelpTest, RunHelpStatesTheTaskConfigBounds) {
  std::string text = RunCli({"run", "--help"}).out;
  EXPECT_NE(
      text.find(std::to_string(driver::kMinMemSizeMiB) + " to " + std::to_string(driver::kMaxMemSizeMiB)),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("1 to " + std::to_string(driver::kMaxVcpuCount)), std::string::npos) << text;
}

TEST(CliHelpTest, TopLevelUsageListsEveryCommandAndHelp) {
  Ran ran = RunCli({"--help"});
  EXPECT_EQ(ran.exit_code, 0);
  for (const Command* c : Commands()) EXPECT_NE(ran.out.find("  " + std::string(c->name)), std::string::npos);
  EXPECT_NE(ran.out.find("help [COMMAND]"), std::string::npos);
  EXPECT_EQ(RunCli({"help"}).out, ran.out);
  Ran bad = RunCli({"help", "bogus"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("unknown command \"bogus\""), std::string::npos) << bad.err;
}

// The error line, then one line pointing at the help; nothing on stdout; exit code 2.
void ExpectUsageError(const std::vector<std::string>& args, const std::string& error,
                      const std::string& help) {
  Ran ran = RunCli(args);
  std::string label = args.empty() ? "" : args[0];
  for (size_t i = 1; i < args.size(); i++) label += " " + args[i];
  EXPECT_EQ(ran.exit_code, 2) << label;
  EXPECT_EQ(ran.out, "") << label;
  EXPECT_EQ(ran.err, error + "\nsee: " + std::string(NFC_PLUGIN_BINARY) + " " + help + " --help\n") << label;
}

TEST(CliUsageErrorTest, BadFlagsAndValuesNameThemselves) {
  ExpectUsageError({"run", "--memory", "-5", "alpine"},
                   "run: --memory \"-5\": expected a whole number of MiB from 16 to 1048576", "run");
  ExpectUsageError({"run", "-m", "15", "alpine"},
                   "run: -m \"15\": expected a whole number of MiB from 16 to 1048576", "run");
  ExpectUsageError({"run", "--vcpus", "0", "alpine"},
                   "run: --vcpus \"0\": expected a whole number of CPUs from 1 to 32", "run");
  ExpectUsageError({"run", "--vcpus=x", "alpine"},
                   "run: --vcpus \"x\": expected a whole number of CPUs from 1 to 32", "run");
  ExpectUsageError({"run", "alpine", "--memory"}, "run: --memory needs a value (MiB)", "run");
  ExpectUsageError({"run", "--backend", "kvm", "alpine"},
                   "run: --backend \"kvm\": expected auto, firecracker or qemu", "run");
  ExpectUsageError({"run", "-e", "=x", "alpine"}, "run: -e \"=x\": expected NAME=VALUE", "run");
  ExpectUsageError({"run", "--foo", "alpine"}, "run: unknown flag \"--foo\"", "run");
  ExpectUsageError({"run"}, "run: missing IMAGE", "run");
  ExpectUsageError({"run", "alpine", "sh"},
                   "run: unexpected argument \"sh\" after IMAGE \"alpine\" (put the command after --)",
                   "run");
  ExpectUsageError({"image", "pull", "--platform", "bad", "alpine"},
                   "image pull: --platform \"bad\": expected OS/ARCH[/VARIANT], e.g. linux/amd64",
                   "image pull");
  ExpectUsageError({"image", "pull"}, "image pull: missing IMAGE", "image pull");
  ExpectUsageError({"image", "ls", "--force"}, "image ls: unknown flag \"--force\"", "image ls");
  ExpectUsageError({"image", "prune", "--max-size", "1G"},
                   "image prune: --max-size \"1G\": expected a whole number of bytes, at least 1",
                   "image prune");
  ExpectUsageError({"image", "bogus"},
                   "image: unknown sub-command \"bogus\" (expected pull, ls, rm or prune first)", "image");
  ExpectUsageError({"logs"}, "logs: missing TASK (a task id or name, see ps)", "logs");
  ExpectUsageError({"logs", "--data-dir"}, "logs: --data-dir needs a value (DIR)", "logs");
  ExpectUsageError({"ps", "--bogus"}, "ps: unknown flag \"--bogus\"", "ps");
  ExpectUsageError({"ps", "x"}, "ps: unexpected argument \"x\" (ps takes only flags)", "ps");
  ExpectUsageError({"doctor", "--jailer", "maybe"}, "doctor: --jailer \"maybe\": expected true or false",
                   "doctor");
  ExpectUsageError({"version", "--json"}, "version: unknown flag \"--json\"", "version");
}

TEST(CliDataDirTest, TheImageCommandDefaultsToThePluginsDataDir) {
  EXPECT_EQ(image::kDefaultDataDir, driver::kDefaultDataDir);
}

// `image --data-dir D` works on the cache the plugin and `run --data-dir D` use (task::Manager opens
// image::StoreRoot(data_dir)): an image pulled by the one is listed, and found cached, by the other.
TEST(CliDataDirTest, ImageAndRunShareTheDataDirsCache) {
  test_support::TempDir dir("cli-data");
  image::testing::TestImage img;
  img.layers.push_back({{{'f', "hello", 0644, "hi\n"}}, "gzip"});
  ASSERT_TRUE(image::testing::WriteOciLayout(dir.Path("layout"), "v1", {img}).ok());
  const std::string data = dir.Path("data");
  Ran pulled = RunCli({"image", "pull", "--data-dir", data, "oci:" + dir.Path("layout") + ":v1"});
  ASSERT_EQ(pulled.exit_code, 0) << pulled.err;
  std::string digest = pulled.out.substr(0, pulled.out.find('\n'));
  ASSERT_EQ(digest.rfind("sha256:", 0), 0u) << pulled.out;
  EXPECT_NE(pulled.out.find("\n" + image::StoreRoot(data) + "/images/"), std::string::npos) << pulled.out;

  // The store the task manager opens for this data dir holds the image.
  auto store = image::Store::Open({image::StoreRoot(data), 0, true});
  ASSERT_TRUE(store.ok()) << store.error().message();
  auto list = (*store)->List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].manifest_digest, digest);

  // $NFC_DATA_DIR is the default of every command; `ls` finds the image there.
  Ran listed = RunCli({"image", "ls"}, {"NFC_DATA_DIR=" + data});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find(digest.substr(0, 19)), std::string::npos) << listed.out;

  // `run --data-dir D` finds the image converted already (an oci: layout is still read: "Downloading"). It
  // then fails to start QEMU (a path that does not exist): the VM is not what this test is about.
  NFC_REQUIRE_OR_SKIP(::geteuid() == 0, "run needs root (task directories, cgroups, the VMM sandbox)");
  const std::vector<std::string> no_vmm = {
      "run",      "--data-dir",    data,       "--backend",    "qemu", "--qemu-path", "/nonexistent/qemu",
      "--kernel", "/etc/hostname", "--initrd", "/etc/hostname"};
  std::vector<std::string> args = no_vmm;
  args.push_back("oci:" + dir.Path("layout") + ":v1");
  Ran ran = RunCli(args);
  EXPECT_EQ(ran.exit_code, 125) << ran.err;
  EXPECT_NE(ran.err.find("/nonexistent/qemu"), std::string::npos) << ran.err;
  EXPECT_EQ(ran.err.find("Building root filesystem"), std::string::npos) << ran.err;

  // And the other way: what `run --data-dir D2` pulled, `image ls --data-dir D2` lists.
  const std::string data2 = dir.Path("data2");
  args[2] = data2;
  ran = RunCli(args);
  EXPECT_EQ(ran.exit_code, 125) << ran.err;
  EXPECT_NE(ran.err.find("Building root filesystem"), std::string::npos) << ran.err;
  listed = RunCli({"image", "ls", "--data-dir", data2});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find(digest.substr(0, 19)), std::string::npos) << listed.out;

  // The deprecated --root names the cache itself, with a warning.
  Ran old = RunCli({"image", "ls", "--root", image::StoreRoot(data)});
  EXPECT_EQ(old.exit_code, 0) << old.err;
  EXPECT_NE(old.out.find(digest.substr(0, 19)), std::string::npos) << old.out;
  EXPECT_NE(old.err.find("--root is deprecated; use --data-dir"), std::string::npos) << old.err;
}

}  // namespace
}  // namespace nfc::cli
