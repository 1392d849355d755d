// Interim entry point: the host role as its own static binary, used until src/init/main.cc (the one
// nomad-init with guest and host roles) dispatches to nfc::init::host::Main. Identical behaviour.
#include "init/host/host.h"

int main(int argc, char** argv) {
  return nfc::init::host::Main(argc, argv);
}
