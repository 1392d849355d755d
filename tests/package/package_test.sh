#!/usr/bin/env bash
# The Debian package's install test (label `package`): builds the .deb from an already-built tree with
# scripts/package (debian/rules NFC_DEB_BUILD_DIR, lintian must pass), installs it with dpkg into a fresh root,
# uses it from the installed paths alone (in_root.sh: doctor, `run` of the demo image, the conformance
# harness's fingerprint scenario and a lifecycle scenario on the installed plugin), removes it (nothing of it
# may remain but the data dir) and purges it (the data dir goes too).
#
# The fresh root: an overlay whose lower dir is this host's / and whose upper dir is a tmpfs, in a private
# mount namespace (unshare -m), with /proc, /dev, /sys and a new /run, entered with chroot. The host's own
# file systems are never written: everything dpkg and the tasks write lands in the tmpfs, and the namespace's
# mounts vanish with it. Needs root.
#
# Usage: package_test.sh SOURCE_DIR BUILD_DIR NFC_CONFORMANCE NFC_HARNESS_ENV
# Exit: 0 passed, 1 failed, 77 a prerequisite is missing on a developer's machine (a failure in CI or as root).
set -euo pipefail
if [ "${1:-}" = --in-namespace ]; then
  shift
  exec "$(dirname "$0")/fresh_root.sh" "$@"
fi
[ $# -eq 4 ] || { echo "usage: package_test.sh SOURCE_DIR BUILD_DIR NFC_CONFORMANCE NFC_HARNESS_ENV" >&2; exit 2; }
src=$1 build=$2 conformance=$3 harness_env=$4
here=$(cd "$(dirname "$0")" && pwd)
start=$(date +%s)

missing() {
  if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ] || [ "$(id -u)" -eq 0 ]; then
    echo "FAIL: missing prerequisite: $1 (a failure, not a skip, in CI or as root)" >&2
    exit 1
  fi
  echo "SKIP: $1"
  exit 77
}
[ "$(id -u)" -eq 0 ] || missing "needs root (dpkg -i into a chroot, mounts in a private namespace)"
for tool in unshare chroot dpkg-buildpackage dh lintian dpkg-deb; do
  command -v "$tool" >/dev/null || missing "$tool is not installed (scripts/packages.txt)"
done
for f in "$conformance" "$harness_env"; do [ -x "$f" ] || missing "$f is not built"; done
# The host must not have the package (or its files) itself: the test would prove nothing.
# shellcheck disable=SC2016 # dpkg-query's format
status=$(dpkg-query -W -f='${Status}' nomad-firecracker 2>/dev/null || true)
if [ -n "$status" ] && [ "$status" != "unknown ok not-installed" ]; then
  echo "FAIL: nomad-firecracker is on this host ($status); the test needs a host without it" >&2
  exit 1
fi
for p in /usr/lib/nomad-firecracker /usr/bin/nomad-driver-firecracker /usr/bin/nomados; do
  if [ -e "$p" ]; then echo "FAIL: $p exists on this host; the test needs a host without the package" >&2; exit 1; fi
done

work=$(mktemp -d /tmp/nfc-package-test-XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "==> building the package from $build (scripts/package --build-dir)"
deb=$("$src/scripts/package" --build-dir "$build" --out "$work/deb")
built=$(date +%s)
echo "==> $deb: $(stat -c %s "$deb") bytes, Installed-Size $(dpkg-deb -f "$deb" Installed-Size) KiB," \
  "built and checked by lintian in $((built - start)) s"
dpkg-deb -c "$deb"
dpkg-deb -f "$deb" Package Version Architecture Depends Recommends Suggests

echo "==> installing it into a fresh root"
# Bounded: the scenarios have their own limits; this is the backstop for the whole namespace.
code=0
timeout --kill-after=20 900 unshare -m --propagation private -- "$here/package_test.sh" --in-namespace \
  "$work" "$deb" "$conformance" "$harness_env" || code=$?
echo "==> package test: $( [ "$code" -eq 0 ] && echo passed || echo "FAILED (exit $code)" )" \
  "in $(($(date +%s) - start)) s (package build $((built - start)) s)"
exit "$code"
