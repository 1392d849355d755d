# shellcheck shell=bash disable=SC2034,SC2154  # globals shared with bench/run and the other lib files
# bench/lib/boot.sh, sourced by bench/run: section 2, start-up breakdown. bench-boot-bin's boot phases per
# kernel and VMM set-up, and StartTask's own phases through `nomad-driver-firecracker run --timings`. Its
# docs/performance.md block and plots: boot_doc in docs.sh.

# ---------------------------------------------------------------------------------------------------------
# Section 2: start-up breakdown
boot_phases=(vmm-start to-kernel kernel-init init-execve execve-exit exit-vmm-end total)
boot_series=(qemu fc qemu-sandboxed fc-jailed)
series_title() {
  case "$1" in
    qemu) echo "QEMU" ;;
    fc) echo "Firecracker (stand-in)" ;;
    qemu-sandboxed) echo "QEMU sandboxed" ;;
    fc-jailed) echo "Firecracker jailed (stand-ins)" ;;
  esac
}

section_boot() {
  section_timer_start
  ensure_packages gnuplot-nox
  ensure_built bench-boot-bin fake-firecracker fake-jailer nomad-init nomad-driver-firecracker nomad-fc-shim
  local k i label rest v t s
  declare -gA guest_dir=()
  boot_kernels=()
  for k in $kernels; do
    guest_dir[$k]=$(make_guest "$k")
    boot_kernels+=("$k")
    rec "bootinfo/$k/vmlinux" "$(stat -c %s "${guest_dir[$k]}/vmlinux")"
    rec "bootinfo/$k/initramfs" "$(stat -c %s "${guest_dir[$k]}/initramfs.cpio.gz")"
  done
  # bench-boot-bin: one boot per series per call; the kernels alternate call by call.
  for ((i = 0; i < runs; i++)); do
    for k in "${boot_kernels[@]}"; do
      say "boot: bench-boot-bin, $k kernel, run $((i + 1))/$runs"
      NFC_GUEST_DIR=${guest_dir[$k]} timeout 900 "$boot_bench" 1 >"$work/boot.out" 2>"$work/boot.err" ||
        { cat "$work/boot.out" "$work/boot.err" >&2; die "bench-boot-bin failed ($k kernel)"; }
      boot_accel=$(sed -n 's/^accelerator: \([A-Z]*\);.*/\1/p' "$work/boot.out")
      # Per-run rows: "<run> <series name> <7 numbers>"
      while IFS=$'\t' read -r label rest; do
        case "$label" in
          qemu) s="qemu" ;;
          "firecracker (stand-in)") s="fc" ;;
          "qemu sandboxed") s="qemu-sandboxed" ;;
          "firecracker jailed") s="fc-jailed" ;;
          *) continue ;;
        esac
        read -r -a v <<<"$rest"
        for t in "${!boot_phases[@]}"; do rec "boot/$k/$s/${boot_phases[$t]}" "${v[$t]}"; done
      done < <(awk '$1 ~ /^[0-9]+$/ && NF >= 9 { l = $2; for (f = 3; f <= NF - 7; f++) l = l " " $f
                 printf "%s\t", l; for (f = NF - 6; f <= NF; f++) printf " %s", $f; print "" }' "$work/boot.out")
    done
  done
  # StartTask's phases through the CLI (`run --timings`), image already in the cache (one untimed run first).
  local data=$work/d-start
  busybox_image "$work/oci-bb" bb 0
  for k in "${boot_kernels[@]}"; do
    cli_run "$data" "$k" "$work/oci-bb:bb" "$work/start.err" /bin/true || die "run failed ($k kernel): $(cat "$work/start.err")"
  done
  for ((i = 0; i < runs; i++)); do
    for k in "${boot_kernels[@]}"; do
      say "boot: run --timings, $k kernel, run $((i + 1))/$runs"
      timed t cli_run "$data" "$k" "$work/oci-bb:bb" "$work/start.err" /bin/true ||
        die "run failed ($k kernel): $(cat "$work/start.err")"
      rec "start/$k/wall" "$t"
      parse_timings "$work/start.err" "start/$k"
    done
  done
  rm -rf "$data" "$work/oci-bb"

  for k in "${boot_kernels[@]}"; do
    for s in "${boot_series[@]}"; do
      trow boot "$k kernel, $(series_title "$s"): VMM start → VMM end" "boot/$k/$s/total" ms %.0f
    done
    trow boot "$k kernel, $(series_title qemu): kernel start → init" "boot/$k/qemu/kernel-init" ms %.0f
    trow boot "$k kernel, StartTask → workload started (cached image)" "start/$k/total" ms %.0f
  done
  if [ ${#boot_kernels[@]} -ge 2 ]; then
    for s in "${boot_series[@]}"; do
      trow_text boot "${boot_kernels[0]} / ${boot_kernels[1]}, $(series_title "$s"), total" \
        "$(ratio_cell "boot/${boot_kernels[0]}/$s/total" "boot/${boot_kernels[1]}/$s/total")" x
    done
  fi
  boot_minutes=$(section_minutes)
  [ "$write_docs" = 1 ] && boot_doc
  return 0
}

# cli_run DATA_DIR KERNEL IMAGE ERRFILE CMD...: one `nomad-driver-firecracker run --timings`, output discarded
cli_run() {
  local data=$1 k=$2 image=$3 err=$4
  shift 4
  NFC_SHIM_PATH=$shim timeout --kill-after=30 600 "$cli" run --timings --data-dir "$data" \
    --kernel "${guest_dir[$k]}/vmlinux" --initrd "${guest_dir[$k]}/initramfs.cpio.gz" "oci:$image" -- "$@" \
    >/dev/null 2>"$err"
}

# parse_timings FILE KEY: the CLI's "==> start-up: T ms total = image A + prepare B + VMM start C + boot to
# workload D (guest clock: ...)" line into KEY/{total,image,prepare,vmm,boot}
parse_timings() {
  local line total image prepare vmm boot
  line=$(grep -m1 '^==> start-up:' "$1") || die "no start-up timings in $1: $(cat "$1")"
  read -r total image prepare vmm boot < <(echo "$line" | sed -E \
    's/.*start-up: ([0-9]+) ms total = image ([0-9]+) \+ prepare ([0-9]+) \+ VMM start ([0-9]+) \+ boot to workload ([0-9]+).*/\1 \2 \3 \4 \5/')
  rec "$2/total" "$total"
  rec "$2/image" "$image"
  rec "$2/prepare" "$prepare"
  rec "$2/vmm" "$vmm"
  rec "$2/boot" "$boot"
}
