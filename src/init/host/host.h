// nomad-init, host role: PID 1 of a NomadOS machine.
//
// Stage 1 (in the initramfs): mount /dev /proc /sys, load the storage drivers the hardware asks for, find the
// system partition by its GPT name, switch to it and exec /sbin/nomad-init there.
// Stage 2 (on the read-only system partition): mounts, data partition, kernel modules, sysctls, hostname,
// machine-id, clock, loopback and network (DHCP or `ip=`), then `nomad agent -config /etc/nomad.d`,
// supervised; reaps every orphan; on the power button, Ctrl-Alt-Del or a signal, stops the agent with SIGTERM
// (it drains), stops everything else, unmounts, and powers off or reboots. It never exits.
//
// Options come from the kernel command line (see cmdline.h and docs/nomados.md).
#pragma once

namespace nfc::init::host {

// The role's entry point; main() dispatches here. Returns only when not run as PID 1 (usage error).
int Main(int argc, char** argv);

}  // namespace nfc::init::host
