#!/usr/bin/env bash
# Image conversion benchmark (not part of CI's pass/fail): the same many-file image converted
#   (a) by `umoci unpack` + `mkfs.ext4 -d`   (the unprivileged chain a shell script would use)
#   (b) by our converter (`nfc-image-tool pull oci:...`: verify + copy blobs into the cache, layers -> ext4)
# and the disk's raw sequential write throughput for scale. Prints a table; exits 0 unless a step fails.
#
# Usage: bench/image/run.sh [SOURCE_DIR...]   (default: /usr/share/doc /usr/include /usr/lib/python3.11)
# Env:   NFC_IMAGE_TOOL (default: build/image-rel/src/image/nfc-image-tool, built if missing, non-sanitized)
#        WORK (default: a temp dir under /var/tmp), RUNS (default 3)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tool=${NFC_IMAGE_TOOL:-$root/build/image-rel/src/image/nfc-image-tool}
runs=${RUNS:-3}
if [[ ! -x $tool ]]; then
  cmake -S "$root" -B "$root/build/image-rel" -G Ninja -DNFC_SANITIZE=OFF -DNFC_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$root/build/image-rel" --target nfc-image-tool -j2 >/dev/null
fi
for t in umoci mkfs.ext4 e2fsck dd awk; do command -v "$t" >/dev/null || { echo "bench: $t missing" >&2; exit 1; }; done
work=${WORK:-$(mktemp -d /var/tmp/nfc-image-bench.XXXXXX)}
trap 'rm -rf "$work"' EXIT
sources=("$@")
[[ ${#sources[@]} -gt 0 ]] || sources=(/usr/share/doc /usr/include /usr/lib/python3.11)

now() { date +%s.%N; }
elapsed() { awk -v a="$(date +%s.%N)" -v b="$1" 'BEGIN { printf "%.3f", a - b }'; }
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }
less_than() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

echo "== building the test image from: ${sources[*]}"
mkdir -p "$work/tree"
for s in "${sources[@]}"; do
  mkdir -p "$work/tree$(dirname "$s")"
  cp -a "$s" "$work/tree$(dirname "$s")/"
done
files=$(find "$work/tree" -type f | wc -l)
bytes=$(du -sb "$work/tree" | cut -f1)
umoci init --layout "$work/oci" >/dev/null
umoci new --image "$work/oci:bench" >/dev/null
umoci unpack --image "$work/oci:bench" "$work/bundle" >/dev/null
cp -a "$work/tree/." "$work/bundle/rootfs/"
umoci repack --image "$work/oci:bench" "$work/bundle" >/dev/null
rm -rf "$work/bundle" "$work/tree"
layer_bytes=$(du -sb "$work/oci/blobs" | cut -f1)
printf 'image: %d files, %d MB content, %d MB compressed\n' "$files" $((bytes / 1000000)) $((layer_bytes / 1000000))

# ext4 size for mkfs -d: content plus 30% and 64 MiB (what our converter's own estimate is close to).
size_mb=$(( bytes * 13 / 10 / 1048576 + 64 ))

best_umoci=""; best_ours=""
for i in $(seq "$runs"); do
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  t0=$(now)
  umoci unpack --image "$work/oci:bench" "$work/unpacked" >/dev/null
  rm -f "$work/mkfs.ext4"
  mkfs.ext4 -q -F -d "$work/unpacked/rootfs" "$work/mkfs.ext4" "${size_mb}M"
  sync -f "$work/mkfs.ext4"
  t_umoci=$(elapsed "$t0")
  rm -rf "$work/unpacked" "$work/mkfs.ext4"

  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  rm -rf "$work/cache"
  t0=$(now)
  "$tool" pull --root "$work/cache" "oci:$work/oci:bench" >/dev/null 2>&1
  t_ours=$(elapsed "$t0")
  img=$(ls "$work"/cache/images/*/rootfs.ext4)
  e2fsck -fn "$img" >/dev/null 2>&1 || { echo "bench: e2fsck failed on our image" >&2; exit 1; }
  printf 'run %d: umoci+mkfs.ext4 -d %.2f s   ours %.2f s\n' "$i" "$t_umoci" "$t_ours"
  if [[ -z $best_umoci ]] || less_than "$t_umoci" "$best_umoci"; then best_umoci=$t_umoci; fi
  if [[ -z $best_ours ]] || less_than "$t_ours" "$best_ours"; then best_ours=$t_ours; fi
done
img_mb=$(( $(du -sb --apparent-size "$img" | cut -f1) / 1048576 ))
rm -rf "$work/cache"

sync
t0=$(now)
dd if=/dev/zero of="$work/dd" bs=4M count=256 conv=fsync status=none
t_dd=$(elapsed "$t0")
rm -f "$work/dd"
disk=$(awk -v t="$t_dd" 'BEGIN { printf "%d", 1024 / t }')

echo
printf '%-34s %10s\n' "converter (best of $runs)" "seconds"
printf '%-34s %10.2f\n' "umoci unpack + mkfs.ext4 -d" "$best_umoci"
printf '%-34s %10.2f\n' "nfc-image-tool pull oci:" "$best_ours"
printf '%-34s %9.1fx\n' "speed-up" "$(calc "$best_umoci / $best_ours")"
printf '%-34s %7d MB/s\n' "content rate (ours)" "$(awk -v b="$bytes" -v t="$best_ours" 'BEGIN { printf "%d", b / 1000000 / t }')"
printf '%-34s %7d MB/s\n' "disk raw write (dd 1 GiB, fsync)" "$disk"
printf '%-34s %7d MiB\n' "our ext4 image (apparent size)" "$img_mb"
