#!/usr/bin/env bash
# shellcheck disable=SC2016 # the ${Status} formats are dpkg-query's, not the shell's
# fresh_root.sh: package_test.sh's part inside its private mount namespace (never run directly). Makes the
# fresh root (an overlay: lower = this host's /, upper = a tmpfs), installs the package with dpkg, runs
# in_root.sh there under nfc-harness-env, then removes and purges the package, checking what is left.
# Usage: fresh_root.sh WORK_DIR DEB NFC_CONFORMANCE NFC_HARNESS_ENV
set -euo pipefail
work=$1 deb=$2 conformance=$3 harness_env=$4
here=$(cd "$(dirname "$0")" && pwd)
t="$work/t"
root="$t/root"
upper="$t/upper"
fail() { echo "FAIL: $*" >&2; exit 1; }

# Processes whose root is the fresh root (a VMM or shim a failure left behind) die with it; the mounts go
# with the namespace.
cleanup() {
  local p
  for p in /proc/[0-9]*; do
    if [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ]; then kill -9 "${p#/proc/}" 2>/dev/null || true; fi
  done
  umount -R -l "$root" 2>/dev/null || true
  umount -l "$t" 2>/dev/null || true
}
trap cleanup EXIT

mkdir -p "$t"
mount -t tmpfs -o mode=0755 nfc-package-test "$t"
mkdir -p "$upper" "$t/overlay-work" "$root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$upper,workdir=$t/overlay-work" "$root"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --rbind /sys "$root/sys"
mount -t tmpfs -o mode=0755 run "$root/run"

# A clean environment in the root; CI is kept (a missing prerequisite fails there).
in_root() {
  chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LANG=C.UTF-8 CI="${CI:-}" "$@"
}

# The package's files, from the .deb itself ("./usr/bin/x" -> "usr/bin/x"; symlinks without their target).
mapfile -t files < <(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { sub(/^\.\//, "", $6); print $6 }')
[ "${#files[@]}" -gt 5 ] || fail "the package lists only ${#files[@]} files"
assert_files_absent() {
  local f
  for f in "${files[@]}"; do
    if [ -e "$root/$f" ] || [ -L "$root/$f" ]; then fail "$1: /$f exists"; fi
  done
  if [ -e "$root/usr/lib/nomad-firecracker" ]; then fail "$1: /usr/lib/nomad-firecracker exists"; fi
}

# The host's data dir (if a run on this host made one) is hidden in the root, so purge has something of
# ours to delete and the run below starts without a cache.
in_root rm -rf /var/lib/nomad-firecracker
assert_files_absent "before installing"

echo "==> dpkg -i ${deb##*/}"
in_root dpkg -i "$deb"
in_root dpkg-query -W -f='${Status} ${Version}\n' nomad-firecracker | grep -q '^install ok installed ' ||
  fail "dpkg does not list nomad-firecracker as installed"
for f in "${files[@]}"; do
  [ -e "$root/$f" ] || [ -L "$root/$f" ] || fail "installed, but /$f is missing"
done

echo "==> using it from the installed paths (in_root.sh, under nfc-harness-env)"
in_root "$harness_env" --timeout 600 -- /bin/bash "$here/in_root.sh" "$conformance" ||
  fail "in_root.sh failed (exit $?)"
[ -d "$root/var/lib/nomad-firecracker/images" ] || fail "the run left no image cache in /var/lib/nomad-firecracker"

echo "==> dpkg -r nomad-firecracker"
in_root dpkg -r nomad-firecracker
assert_files_absent "after dpkg -r"
[ -d "$root/var/lib/nomad-firecracker" ] || fail "dpkg -r deleted the data dir /var/lib/nomad-firecracker"
# Nothing else written by us may remain in the upper dir. Allowed: dpkg's database and log and caches other
# packages' triggers refresh (var/lib/dpkg, var/log, var/cache: man-db's index), /tmp (nfc-harness-env's run
# directory, removed by it, and this test's own), skopeo's blob cache (var/lib/containers: nfc-harness-env
# pushes the demo image with skopeo), the data dir, and host directories that were only copied up.
leftovers() {
  cd "$upper"
  find . -mindepth 1 \( -path ./var/lib/dpkg -o -path ./var/log -o -path ./var/cache -o -path ./tmp \
    -o -path ./var/lib/containers -o -path ./var/lib/nomad-firecracker \) -prune -o -print |
    while IFS= read -r p; do
      rel=${p#./}
      if [ -d "$p" ] && [ ! -L "$p" ] && [ -d "/$rel" ]; then continue; fi
      echo "/$rel"
    done
}
leftovers=$(leftovers)
[ -z "$leftovers" ] || fail "dpkg -r left these behind: $leftovers"

echo "==> dpkg -P nomad-firecracker"
in_root dpkg -P nomad-firecracker
[ ! -e "$root/var/lib/nomad-firecracker" ] || fail "dpkg -P kept the data dir /var/lib/nomad-firecracker"
if in_root dpkg-query -W -f='${Status}\n' nomad-firecracker 2>/dev/null | grep -qv '^unknown ok not-installed$'; then
  fail "dpkg still knows nomad-firecracker after dpkg -P: $(in_root dpkg-query -W -f='${Status}' nomad-firecracker)"
fi
echo "==> installed, used, removed (data dir kept) and purged (data dir gone)"
