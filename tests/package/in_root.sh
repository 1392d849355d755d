#!/usr/bin/env bash
# in_root.sh: uses the installed nomad-firecracker package from its installed paths alone, inside
# package_test.sh's fresh root, run by nfc-harness-env (a local TLS registry with basic auth serving the demo
# image: NFC_LC_*). Checks the CLI and man pages, `doctor`, `run` of the demo image with the default data dir,
# kernel and initramfs, and the conformance harness's fingerprint and one lifecycle scenario on the installed
# plugin. Usage: in_root.sh NFC_CONFORMANCE
set -euo pipefail
conformance=$1
lib=/usr/lib/nomad-firecracker
plugin=$lib/plugins/nomad-driver-firecracker
fail() { echo "FAIL: $*" >&2; exit 1; }
# nfc-harness-env points these at the build tree: nothing of it may be used here.
unset NFC_SHIM_PATH NFC_LC_KERNEL NFC_LC_INITRD NFC_DATA_DIR

echo "==> the CLI, its link and the man pages"
[ "$(command -v nomad-driver-firecracker)" = /usr/bin/nomad-driver-firecracker ] || fail "nomad-driver-firecracker is not /usr/bin's"
[ "$(readlink -f /usr/bin/nomad-driver-firecracker)" = "$plugin" ] || fail "/usr/bin/nomad-driver-firecracker does not lead to $plugin"
version=$(nomad-driver-firecracker version)
echo "$version"
grep -q '^nomad-driver-firecracker [0-9]' <<<"$version" || fail "unexpected version output: $version"
for page in man1/nomad-driver-firecracker.1 man1/nomados.1 man8/nomad-init.8; do
  zcat "/usr/share/man/$page.gz" | grep -q '^\.TH ' || fail "/usr/share/man/$page.gz is not a man page"
done
zcat /usr/share/man/man1/nomad-driver-firecracker.1.gz | grep -q '^\.SS run$' || fail "the man page has no run section"
nomados help 2>&1 | grep -q '^usage: nomados build' || fail "nomados help printed no usage"
[ -f /usr/share/doc/nomad-firecracker/configuration.md.gz ] || fail "docs are not in /usr/share/doc/nomad-firecracker"

echo "==> doctor (the installed defaults)"
doctor=$(nomad-driver-firecracker doctor) || { echo "$doctor"; fail "doctor found a FAIL"; }
echo "$doctor"
grep -Eq "^guest-kernel +ok +$lib/guest/vmlinux" <<<"$doctor" || fail "doctor did not find the installed kernel"
grep -Eq "^guest-initramfs +ok +$lib/guest/initramfs.cpio.gz" <<<"$doctor" ||
  fail "doctor did not find the installed initramfs"

echo "==> run $NFC_LC_IMAGE (registry credentials through a Docker config)"
export DOCKER_CONFIG="$NFC_LC_DIR/docker"
mkdir -p "$DOCKER_CONFIG"
auth=$(printf '%s:%s' "$NFC_LC_USERNAME" "$NFC_LC_PASSWORD" | base64 -w0)
printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$NFC_LC_REGISTRY" "$auth" >"$DOCKER_CONFIG/config.json"
code=0
out=$(nomad-driver-firecracker run --ca-file "$NFC_LC_CA_FILE" "$NFC_LC_IMAGE" -- \
  /bin/sh -c 'echo "hello from the installed package"; cat /proc/version; exit 7') || code=$?
echo "$out"
[ "$code" -eq 7 ] || fail "run exited with $code, not the workload's 7"
grep -qx 'hello from the installed package' <<<"$out" || fail "the workload's output is missing"
# The guest ran the installed kernel: the release kernel.env names.
krel=$(sed -n 's/^KREL=//p' "$lib/guest/kernel.env")
grep -q "^Linux version $krel " <<<"$out" || fail "the guest's kernel is not $krel (from $lib/guest/kernel.env)"

echo "==> the conformance harness on the installed plugin"
# The harness needs the shim and guest paths named; they are the installed ones (the plugin's defaults).
export NFC_SHIM_PATH=$lib/nomad-fc-shim NFC_LC_KERNEL=$lib/guest/vmlinux NFC_LC_INITRD=$lib/guest/initramfs.cpio.gz
run_harness() {
  local want=$1 out code=0
  shift
  out=$("$conformance" -plugin "$plugin" "$@" 2>&1) || code=$?
  echo "$out"
  [ "$code" -eq 0 ] || fail "nfc-conformance $* exited with $code"
  local s
  for s in $want; do grep -q "^ok   $s " <<<"$out" || fail "scenario $s did not pass"; done
}
run_harness "fingerprint-instance-info-schema-kill runtime-instance-healthy-fingerprint" \
  -run '^(fingerprint-instance-info-schema-kill|runtime-instance-healthy-fingerprint)$'
run_harness "lifecycle-exit-codes-and-output" -lifecycle -run '^lifecycle-exit-codes-and-output$'
