# Sourced by nomados (src/nomados/nomados): `nomados bundle`, an update bundle from a built raw image.
# shellcheck shell=bash disable=SC2154,SC2034 # globals are shared with nomados and the other lib files

# A bundle is a directory nomad-init reads (src/init/host/update.h):
#   system.ext4   slot a's filesystem (only the filesystem's blocks, not the slot's free tail)
#   vmlinuz, initrd.img
#   manifest      "nomados-bundle 1", "version TEXT", then "file NAME SIZE SHA256" per file
cmd_bundle() {
  local image="" out="" version=""
  while [ $# -gt 0 ]; do
    case "$1" in
      -h|--help) usage; exit 0 ;;
    esac
    [ $# -ge 2 ] || die "option $1 needs a value (see: nomados help)"
    case "$1" in
      --image) image=$2 ;;
      --out) out=$2 ;;
      --version) version=$2 ;;
      *) die "bundle: unknown option '$1' (see: nomados help)" ;;
    esac
    shift 2
  done
  need_file --image "$image"
  [ -n "$out" ] || die "bundle: --out is required"
  [[ "$version" != *$'\n'* ]] || die "bundle: --version must be one line"
  local tool
  for tool in partx dumpe2fs mcopy sha256sum dd; do
    command -v "$tool" >/dev/null || die "bundle: missing tool $tool (apt-get install util-linux e2fsprogs mtools)"
  done
  mkdir -p "$out"
  local start sectors pname boot_start=""
  local sys_start=""
  while read -r start sectors pname; do
    case "$pname" in
      nomados-boot) boot_start=$start ;;
      nomados-system-a) sys_start=$start ;;
    esac
  done < <(partx -g -o START,SECTORS,NAME "$image")
  [ -n "$sys_start" ] || die "bundle: --image '$image' has no partition nomados-system-a (built before A/B slots?)"
  [ -n "$boot_start" ] || die "bundle: --image '$image' has no partition nomados-boot"
  # The filesystem's own size (dumpe2fs reads through the offset), so the bundle carries no empty tail.
  local blocks bsize
  blocks=$(dumpe2fs -h "$image?offset=$(( sys_start * 512 ))" 2>/dev/null | awk -F: '/^Block count/ {print $2+0}')
  bsize=$(dumpe2fs -h "$image?offset=$(( sys_start * 512 ))" 2>/dev/null | awk -F: '/^Block size/ {print $2+0}')
  { [ -n "$blocks" ] && [ -n "$bsize" ]; } || die "bundle: no ext4 filesystem in slot a of '$image'"
  dd if="$image" of="$out/system.ext4" bs=512 skip="$sys_start" count=$(( blocks * bsize / 512 )) status=none
  MTOOLS_SKIP_CHECK=1 mcopy -o -i "$image@@$(( boot_start * 512 ))" ::/a/vmlinuz ::/a/initrd.img "$out/"
  [ -n "$version" ] || version="image $(sha256sum < "$image" | cut -c1-16)"
  local f
  {
    echo "nomados-bundle 1"
    echo "version $version"
    for f in system.ext4 vmlinuz initrd.img; do
      echo "file $f $(stat -c %s "$out/$f") $(sha256sum < "$out/$f" | cut -d' ' -f1)"
    done
  } > "$out/manifest.tmp"
  mv "$out/manifest.tmp" "$out/manifest"
  note "bundle in $out: $(du -sh "$out" | cut -f1) ($version)"
}
