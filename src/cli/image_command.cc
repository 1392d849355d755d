#include "cli/command.h"
#include "image/image_cli.h"

namespace nfc::cli {
namespace {

int RunImageVerb(const Invocation& invocation) {
  return image::RunImageCommand(invocation.program, invocation.args);
}

}  // namespace

extern const Command kImageCommand = {
    "image", "pull IMAGE | ls | rm IMAGE | prune",
    "manage the image cache (pull from a registry, list, remove, garbage-collect)", RunImageVerb};

}  // namespace nfc::cli
