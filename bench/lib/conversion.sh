# shellcheck shell=bash disable=SC2034,SC2154  # globals shared with bench/run and the other lib files
# bench/lib/conversion.sh, sourced by bench/run: section 1, image conversion. gzip -dc, our converter and
# umoci unpack + mkfs.ext4 -d (+ mkfs.erofs) side by side per shape, then the scaling series. Its
# docs/performance.md block and plots: conversion_doc in docs.sh.

# ---------------------------------------------------------------------------------------------------------
# Section 1: image conversion
tool_prefix=()

gzip_dc() { gzip -dc "$1" >/dev/null; }
# ours_pull DATA_DIR LAYOUT:TAG: the image cache is DATA_DIR/images, as for the plugin.
ours_pull() { "$tool" "${tool_prefix[@]}" pull --data-dir "$1" "oci:$2" >"$work/ours.out" 2>"$work/ours.log"; }
unpack() { umoci unpack --image "$1" "$2" >"$work/unpack.log" 2>&1 || { cat "$work/unpack.log" >&2; return 1; }; }
mkfs_ext4() {  # TREE IMG SIZE_MB INODES
  mkfs.ext4 -q -F -N "$4" -d "$1" "$2" "${3}M" >"$work/mkfs.log" 2>&1 || { cat "$work/mkfs.log" >&2; return 1; }
  sync "$2"
}
mkfs_erofs() {  # TREE IMG
  mkfs.erofs --quiet "$2" "$1" >"$work/erofs.log" 2>&1 || { cat "$work/erofs.log" >&2; return 1; }
  sync "$2"
}

# conv_measure KEY LAYOUT TAG FILES BYTES EROFS(0|1): RUNS rounds of gzip -dc, ours, umoci+mkfs.ext4 (and
# mkfs.erofs on the same unpacked tree), the order rotating each round.
conv_measure() {
  local key=$1 layout=$2 tag=$3 files=$4 bytes=$5 erofs=$6 layer size_mb inodes i j step t t1 t2 steps
  layer=$(layer_of "$layout" "$tag")
  cat "$layer" >/dev/null  # page cache: every tool reads the layer from memory unless DROP_CACHES=1
  size_mb=$((bytes * 13 / 10 / 1048576 + 64))
  inodes=$((files + files / 4 + 4096))
  steps=(gzip ours chain)
  for ((i = 0; i < runs; i++)); do
    for ((j = 0; j < 3; j++)); do
      step=${steps[$(((i + j) % 3))]}
      case $step in
        gzip)
          drop_caches
          timed t gzip_dc "$layer"
          rec "$key/gzip" "$t"
          ;;
        ours)
          rm -rf "$work/data"
          drop_caches
          timed t ours_pull "$work/data" "$layout:$tag" ||
            { cat "$work/ours.log" >&2; die "our converter failed on $key"; }
          rec "$key/ours" "$t"
          [ "$i" -gt 0 ] || check_ours "$key" "$layer"
          rm -rf "$work/data"
          ;;
        chain)
          rm -rf "$work/bundle" "$work/chain.ext4" "$work/chain.erofs"
          drop_caches
          timed t1 unpack "$layout:$tag" "$work/bundle"
          timed t2 mkfs_ext4 "$work/bundle/rootfs" "$work/chain.ext4" "$size_mb" "$inodes"
          rec "$key/unpack" "$t1"
          rec "$key/mkfs" "$t2"
          rec "$key/chain" "$(calc "$t1 + $t2")"
          if [ "$erofs" = 1 ]; then
            timed t mkfs_erofs "$work/bundle/rootfs" "$work/chain.erofs"
            rec "$key/erofs" "$t"
            [ "$i" -gt 0 ] || rec "$key/erofs_bytes" "$(stat -c %s "$work/chain.erofs")"
          fi
          rm -rf "$work/bundle" "$work/chain.ext4" "$work/chain.erofs"
          ;;
      esac
    done
    rec "$key/ratio_ours_gzip" "$(calc "$(vals "$key/ours" | tail -1) / $(vals "$key/gzip" | tail -1)")"
    rec "$key/ratio_chain_ours" "$(calc "$(vals "$key/chain" | tail -1) / $(vals "$key/ours" | tail -1)")"
    say "  $key run $((i + 1))/$runs: gzip -dc $(vals "$key/gzip" | tail -1 | cut -c1-5) s, ours $(vals "$key/ours" |
      tail -1 | cut -c1-5) s, umoci+mkfs.ext4 $(vals "$key/chain" | tail -1 | cut -c1-5) s"
  done
}

# After our first conversion of a shape: e2fsck, sizes, and meta.json's decompression counters.
check_ours() {
  local key=$1 layer=$2 hex dir img tar_bytes passes layers
  hex=$(ls "$work/data/images/images")
  dir=$work/data/images/images/$hex
  img=$dir/rootfs.ext4
  e2fsck -fn "$img" >"$work/e2fsck.log" 2>&1 || { cat "$work/e2fsck.log" >&2; die "e2fsck failed on our image of $key"; }
  rec "$key/ours_apparent" "$(stat -c %s "$img")"
  rec "$key/ours_allocated" "$(du -B1 "$img" | cut -f1)"
  tar_bytes=$(json "$dir/meta.json" tar_bytes)
  passes=$(json "$dir/meta.json" layer_passes)
  layers=$(json "$dir/meta.json" layers.length)
  rec "$key/meta_tar_bytes" "$tar_bytes"
  rec "$key/meta_layer_passes" "$passes"
  rec "$key/meta_layers" "$layers"
}

decompressed_once() {  # KEY -> yes | no | n/a
  local key=$1 tb lp ly gz
  tb=$(vals "$key/meta_tar_bytes" | head -1)
  lp=$(vals "$key/meta_layer_passes" | head -1)
  ly=$(vals "$key/meta_layers" | head -1)
  gz=$(vals "$key/tar_bytes" | head -1)
  if [ "$tb" = n/a ] || [ "$lp" = n/a ] || [ -z "$tb" ]; then echo "n/a"; return; fi
  # Read once: one pass per layer, and no more decompressed bytes than `gzip -dc | wc -c` (the reader may
  # stop at the end-of-archive blocks, before gzip's padding).
  if [ "$lp" = "$ly" ] && awk -v t="$tb" -v g="$gz" 'BEGIN { exit !(t <= g && t >= g - 1048576) }'; then
    echo yes
  else
    echo no
  fi
}

section_conversion() {
  section_timer_start
  ensure_packages gnuplot-nox erofs-utils
  for t in umoci mkfs.ext4 e2fsck mkfs.erofs gzip openssl python3; do
    command -v "$t" >/dev/null || die "$t missing (scripts/bootstrap installs it)"
  done
  tool=${NFC_IMAGE_TOOL:-$build/src/image/nfc-image-tool}
  if [ -z "${NFC_IMAGE_TOOL:-}" ]; then ensure_built nfc-image-tool; fi
  [ -x "$tool" ] || die "$tool missing"
  # `nfc-image-tool image pull …` (the plugin's spelling) where the tool takes it, else `nfc-image-tool pull …`.
  tool_prefix=()
  if "$tool" image ls --data-dir "$work/probe-root" >/dev/null 2>&1; then tool_prefix=(image); fi
  rm -rf "$work/probe-root"
  local shape key s layout tree files bytes
  conv_shapes=()
  for shape in ${BENCH_SHAPES:-small debian large}; do
    key=conv/$shape
    tree=$work/tree
    layout=$work/oci-$shape
    say "conversion: building the $(shape_title "$shape") image (scale $scale)"
    rm -rf "$tree"
    build_tree "$shape" "$scale" "$tree"
    files=$(find "$tree" -mindepth 1 ! -type d | wc -l)
    bytes=$(du -sb "$tree" | cut -f1)
    make_image "$tree" "$layout" img
    rm -rf "$tree"
    rec "$key/files" "$files"
    rec "$key/bytes" "$bytes"
    rec "$key/layer_bytes" "$(stat -c %s "$(layer_of "$layout" img)")"
    rec "$key/tar_bytes" "$(gzip -dc "$(layer_of "$layout" img)" | wc -c)"
    say "conversion: $shape: $files files, $((bytes / 1000000)) MB; measuring ($runs runs)"
    conv_measure "$key" "$layout" img "$files" "$bytes" 1
    conv_shapes+=("$shape")
    rm -rf "$layout"
  done
  # Scaling: the Debian shape at several sizes (1× is the image above).
  scaling_points=()
  for s in $scaling; do
    key=scale/$s
    if awk -v s="$s" 'BEGIN { exit !(s == 1) }' && [ -n "$(vals conv/debian/ours)" ]; then
      for f in files bytes layer_bytes tar_bytes gzip ours chain; do
        vals "conv/debian/$f" | while read -r v; do rec "$key/$f" "$v"; done
      done
    else
      say "scaling: Debian shape × $s"
      tree=$work/tree
      rm -rf "$tree" "$work/oci-scale"
      build_tree debian "$(calc "$s * $scale")" "$tree"
      files=$(find "$tree" -mindepth 1 ! -type d | wc -l)
      bytes=$(du -sb "$tree" | cut -f1)
      make_image "$tree" "$work/oci-scale" img
      rm -rf "$tree"
      rec "$key/files" "$files"
      rec "$key/bytes" "$bytes"
      rec "$key/layer_bytes" "$(stat -c %s "$(layer_of "$work/oci-scale" img)")"
      rec "$key/tar_bytes" "$(gzip -dc "$(layer_of "$work/oci-scale" img)" | wc -c)"
      conv_measure "$key" "$work/oci-scale" img "$files" "$bytes" 0
      rm -rf "$work/oci-scale"
    fi
    scaling_points+=("$s")
  done

  for shape in "${conv_shapes[@]}"; do
    key=conv/$shape
    trow conversion "$shape: gzip -dc" "$key/gzip" s
    trow conversion "$shape: ours" "$key/ours" s
    trow conversion "$shape: umoci unpack + mkfs.ext4 -d" "$key/chain" s
    trow conversion "$shape: mkfs.erofs (unpacked tree)" "$key/erofs" s
    trow conversion "$shape: ours / gzip -dc" "$key/ratio_ours_gzip" x
    trow conversion "$shape: (umoci+mkfs.ext4) / ours" "$key/ratio_chain_ours" x
    trow_text conversion "$shape: decompressed once" "$(decompressed_once "$key")"
  done
  for s in "${scaling_points[@]}"; do
    trow scaling "debian × $s ($(awk -v b="$(med "scale/$s/bytes")" 'BEGIN { printf "%.0f", b / 1e6 }') MB): ours" "scale/$s/ours" s
    trow scaling "debian × $s: umoci+mkfs.ext4" "scale/$s/chain" s
  done
  conversion_minutes=$(section_minutes)
  [ "$write_docs" = 1 ] && conversion_doc
  return 0
}
