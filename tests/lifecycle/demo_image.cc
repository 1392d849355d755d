#include "demo_image.h"

#include <vector>

#include "test_layers.h"

namespace nfc::lifecycle_test {

Result<std::string> PushDemoImage(image::testing::LocalRegistry* registry, const std::string& work_dir) {
  using image::testing::E;
  std::vector<E> entries = {{'d', "bin", 0755},
                            {'f', "bin/busybox", 0755, image::testing::ReadFileOrDie("/bin/busybox")}};
  for (const char* applet :
       {"sh", "echo", "sleep", "cat", "kill", "seq", "tty", "true", "false", "ls", "yes", "stty"}) {
    entries.push_back({'l', std::string("bin/") + applet, 0777, "busybox"});
  }
  entries.push_back({'d', "tmp", 01777});
  image::testing::TestImage img;
  img.layers = {{entries, "gzip"}};
  img.config_json =
      R"({"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"],"Env":["PATH=/bin"]}})";
  auto digest = image::testing::WriteOciLayout(work_dir + "/layout", "demo", {img});
  if (!digest.ok()) return Error(digest.error().code(), "oci layout: " + digest.error().message());
  if (Status s = registry->Push(work_dir + "/layout", "demo", "demo:1"); !s.ok()) {
    return Error(s.error().code(), "push: " + s.error().message());
  }
  return registry->host() + "/demo:1";
}

}  // namespace nfc::lifecycle_test
