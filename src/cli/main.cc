// nomad-driver-firecracker's entry point: the plugin or the CLI (cli.cc).
#include "cli/command.h"

int main(int argc, char** argv) {
  return nfc::cli::Main(argc, argv);
}
