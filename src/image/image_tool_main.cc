// nfc-image-tool: the `image` command of nomad-driver-firecracker as a standalone binary (tests, benchmarks).
#include <span>

#include "image/image_cli.h"

int main(int argc, char** argv) {
  return nfc::image::RunImageCommand(argv[0],
                                     std::span<char* const>(argv + 1, static_cast<size_t>(argc - 1)));
}
