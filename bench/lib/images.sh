# shellcheck shell=bash disable=SC2154  # globals shared with bench/run and the other lib files
# bench/lib/images.sh, sourced by bench/run: the test images. The conversion shapes built from host files,
# OCI layouts made with umoci (and reading their JSON), and the busybox image the CLI runs boot.

# ---------------------------------------------------------------------------------------------------------
# Image shapes, built from host files. Sizes scale by keeping every k-th file (fractions) and by copying the
# whole tree again under /copyN (factors above 1), so a shape keeps its mix of file sizes at every size.
# A "-PATH" entry leaves that subtree out. The small-file shape leaves out /usr/share/man/man1 (18,000 entries in
# one directory on the development machine: an extreme no image has, which alone made `mkfs.ext4 -d` take
# minutes) and the two largest header trees.
shape_sources() {
  case "$1" in
    small) echo /usr/share/man -/usr/share/man/man1 /usr/share/icons /usr/include -/usr/include/boost \
      -/usr/include/node /usr/lib/python3/dist-packages ;;
    debian) echo /usr/share/doc /usr/lib/python3.11 /usr/share/perl /usr/share/zoneinfo /etc /usr/sbin \
      /usr/share/i18n /usr/share/perl5 ;;
  esac
}
shape_title() {
  case "$1" in
    small) echo "many small files" ;;
    debian) echo "Debian-rootfs shape" ;;
    large) echo "one large file" ;;
  esac
}

copy_list() {  # LIST DEST COPY
  local - to=$2
  set +o pipefail
  [ "$3" -gt 0 ] && to=$2/copy$3
  mkdir -p "$to"
  tar -C / --no-recursion --verbatim-files-from -T "$1" --warning=no-file-changed -cf - 2>/dev/null |
    tar -C "$to" -xf -
}

build_tree() {  # SHAPE SCALE DEST
  local shape=$1 s=$2 dest=$3 list=$work/files.list srcs=() prune=() d whole frac c
  mkdir -p "$dest"
  if [ "$shape" = large ]; then
    gen_mixed "$dest/data/mixed.bin" "$(awk -v s="$s" 'BEGIN { n = int(300 * s + 0.5); print (n < 3 ? 3 : n) }')"
    return
  fi
  for d in $(shape_sources "$shape"); do
    case "$d" in
      -/*) prune+=(-path "${d#-/}" -prune -o) ;;
      *) if [ -e "$d" ]; then srcs+=("${d#/}"); else say "note: $d does not exist here; the $shape shape goes without it"; fi ;;
    esac
  done
  [ ${#srcs[@]} -gt 0 ] || die "none of the $shape shape's directories exist"
  (cd / && find "${srcs[@]}" "${prune[@]}" \( -type f -o -type l \) -print) | sort >"$list"
  whole=$(awk -v s="$s" 'BEGIN { print int(s) }')
  frac=$(awk -v s="$s" 'BEGIN { print s - int(s) }')
  for ((c = 0; c < whole; c++)); do copy_list "$list" "$dest" "$c"; done
  if awk -v f="$frac" 'BEGIN { exit !(f > 0.0001) }'; then
    awk -v f="$frac" 'int(NR * f) > int((NR - 1) * f)' "$list" >"$list.part"
    copy_list "$list.part" "$dest" "$whole"
  fi
  rm -f "$list" "$list.part"
}

fill_from() {  # OUT BYTES DIR... : OUT = the files below DIRs, concatenated (repeated if short), cut to BYTES
  local - out=$1 need=$2 have
  shift 2
  set +o pipefail
  : >"$out"
  find "$@" -type f -size +0 -print 2>/dev/null | sort >"$out.list"
  [ -s "$out.list" ] || die "no files in $* to make the large file from"
  have=0
  while [ "$have" -lt "$need" ]; do
    xargs -a "$out.list" -d '\n' cat 2>/dev/null | head -c $((need - have)) >>"$out"
    have=$(stat -c %s "$out")
  done
  rm -f "$out.list"
}

# gen_mixed OUT MIB: one file of MIB MiB, 1 MiB chunks in turn from a pseudo-random stream (AES-CTR of zeros:
# incompressible, same bytes every run), text (docs, headers, Perl) and binaries (/usr/bin, /usr/lib).
gen_mixed() {
  local out=$1 mib=$2 third i f
  third=$(((mib + 2) / 3))
  mkdir -p "$(dirname "$out")"
  head -c $((third << 20)) /dev/zero |
    openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f -iv 0f0e0d0c0b0a09080706050403020100 \
      >"$work/mix.rand"
  fill_from "$work/mix.text" $((third << 20)) /usr/share/perl /usr/include /usr/share/doc
  fill_from "$work/mix.bin" $((third << 20)) /usr/bin /usr/lib/x86_64-linux-gnu
  for ((i = 0; i < mib; i++)); do
    case $((i % 3)) in 0) f=rand ;; 1) f=text ;; *) f=bin ;; esac
    dd if="$work/mix.$f" bs=1M skip=$((i / 3)) count=1 status=none
  done >"$out"
  rm -f "$work"/mix.*
}

make_image() {  # TREE LAYOUT TAG: a one-layer image of TREE (as /) in the OCI layout
  [ -f "$2/index.json" ] || umoci init --layout "$2" >/dev/null
  umoci new --image "$2:$3" >/dev/null
  umoci insert --image "$2:$3" "$1" / >/dev/null
}

# json FILE EXPR: a value from a JSON file (python3 is one of scripts/bootstrap's packages); "n/a" when absent
json() {
  python3 - "$1" "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for part in sys.argv[2].split('.'):
    if isinstance(d, dict) and part in d:
        d = d[part]
    elif isinstance(d, list) and part.isdigit() and int(part) < len(d):
        d = d[int(part)]
    elif part == 'length' and isinstance(d, list):
        d = len(d)
    else:
        print('n/a'); sys.exit(0)
print(d if not isinstance(d, (dict, list)) else json.dumps(d))
PY
}

layer_of() {  # LAYOUT TAG -> path of the image's (single) layer blob
  local layout=$1 tag=$2 manifest
  manifest=$(python3 - "$layout/index.json" "$tag" <<'PY'
import json, sys
for m in json.load(open(sys.argv[1]))["manifests"]:
    if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == sys.argv[2]:
        print(m["digest"].split(":")[1])
PY
)
  [ -n "$manifest" ] || die "no image tagged $tag in $layout"
  echo "$layout/blobs/sha256/$(json "$layout/blobs/sha256/$manifest" layers.0.digest | cut -d: -f2)"
}

# ---------------------------------------------------------------------------------------------------------
# The small busybox image the CLI runs boot (the same kind scripts/demo and the lifecycle tests use), plus an
# optional Debian-shaped payload: busybox_image LAYOUT TAG PAYLOAD_SCALE
busybox_image() {
  local layout=$1 tag=$2 payload=$3 tree=$work/bbtree a
  rm -rf "$tree"
  mkdir -p "$tree/bin" "$tree/tmp"
  if awk -v s="$payload" 'BEGIN { exit !(s > 0) }'; then build_tree debian "$payload" "$tree"; fi
  mkdir -p "$tree/bin"
  cp /bin/busybox "$tree/bin/busybox"
  for a in sh echo cat true sleep ls; do ln -sf busybox "$tree/bin/$a"; done
  make_image "$tree" "$layout" "$tag"
  umoci config --image "$layout:$tag" --config.env PATH=/bin --config.cmd /bin/true >/dev/null
  rm -rf "$tree"
}
