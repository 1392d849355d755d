#!/usr/bin/env bash
# The README's main job on the Firecracker backend: scripts/demo with this build tree, `run --backend firecracker`
# and firecracker_path pointing at the Firecracker stand-in (playing 1.16.1, booting the guest in QEMU). Passes
# when the demo image's output arrives and the workload's exit code is 0.
# Usage: demo_firecracker.sh SOURCE_DIR BUILD_DIR FAKE_FIRECRACKER SPEC_DIR
set -euo pipefail
src=$1 build=$2 fake=$3 specs=$4
work=$(mktemp -d /tmp/nfc-demo-fc-XXXXXX)
trap 'rm -rf "$work"' EXIT
cat >"$work/firecracker" <<SCRIPT
#!/bin/sh
exec '$fake' --spec '$specs/firecracker-api-v1.16.1.yaml' --boot-qemu /usr/bin/qemu-system-x86_64 --vsock-relay 1024:nfc.agent --record '$work/requests.jsonl' "\$@"
SCRIPT
chmod 0755 "$work/firecracker"
out=$(NFC_DEMO_BUILD_DIR=$build "$src/scripts/demo" --backend firecracker --firecracker-path "$work/firecracker" 2>&1) || {
  echo "$out"; echo "demo on the Firecracker backend failed" >&2; exit 1; }
echo "$out"
grep -q '^Hello from a microVM!$' <<<"$out" || { echo "the workload's output is missing" >&2; exit 1; }
grep -q 'the workload exited with code 0' <<<"$out" || { echo "exit code is not 0" >&2; exit 1; }
grep -q '"path":"/actions".*"InstanceStart"\|"InstanceStart".*"path":"/actions"' "$work/requests.jsonl" ||
  { echo "the stand-in never got InstanceStart" >&2; exit 1; }
