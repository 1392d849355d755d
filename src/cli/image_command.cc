// `image pull|ls|rm|prune`: the image cache of a data directory (src/image/image_cli.h).
#include <string>
#include <vector>

#include "cli/command.h"
#include "image/image_cli.h"

namespace nfc::cli {
namespace {

int RunImageVerb(const Invocation& invocation) {
  return image::RunImageCommand(invocation.program + " image", invocation.args);
}

std::string ImageHelp(std::string_view program, std::span<const std::string> topic) {
  return image::ImageHelp(std::string(program) + " image", topic.empty() ? "" : topic[0]);
}

std::vector<std::string> ImageFlagNames(std::span<const std::string> topic) {
  return image::ImageFlagNames(topic.empty() ? "" : topic[0]);
}

}  // namespace

extern const Command kImageCommand = {
    "image",
    "pull|ls|rm|prune ...",
    "manage the image cache (pull from a registry, list, remove, garbage-collect)",
    RunImageVerb,
    ImageHelp,
    ImageFlagNames};

}  // namespace nfc::cli
