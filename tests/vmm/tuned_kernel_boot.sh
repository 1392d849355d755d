#!/usr/bin/env bash
# The tuned guest kernel (scripts/tuned-kernel, kernel/microvm.config) through the QEMU boot tests: builds it
# (cached after the first run; about 6.5 min on 2 cores), makes a guest dir with it and the build's nomad-init,
# and runs vmm_qemu_boot_test against that dir. A kernel that fails to build, a fragment line Kconfig drops, or
# a guest that does not boot fails this test.
# Then the Firecracker boot tests against it, where Firecracker 1.7.0 (no ACPI, devices on the command line
# only) must boot as well.
# Usage: tuned_kernel_boot.sh SOURCE_DIR BOOT_TEST NOMAD_INIT GUEST_DIR FC_BOOT_TEST
set -euo pipefail
src=$1 boot_test=$2 init=$3 guest=$4 fc_boot_test=$5
"$src/scripts/guest-kernel" --kernel tuned --out "$guest" --init "$init"
grep -qx 'MODULES=""' "$guest/kernel.env" || { echo "the tuned guest dir holds modules" >&2; exit 1; }
NFC_GUEST_DIR=$guest "$boot_test"
NFC_GUEST_DIR=$guest exec "$fc_boot_test"
