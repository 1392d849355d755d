# shellcheck shell=bash disable=SC2034,SC2154  # globals shared with bench/run and the other lib files
# bench/lib/concurrency.sh, sourced by bench/run: section 3, concurrent starts. N `run`s of one uncached
# image sharing one data dir, timed from launch to the workload's first output line. Its
# docs/performance.md block and plot: concurrency_doc in docs.sh.

# ---------------------------------------------------------------------------------------------------------
# Section 3: concurrent starts
section_concurrency() {
  section_timer_start
  ensure_packages gnuplot-nox
  ensure_built nomad-init nomad-driver-firecracker nomad-fc-shim
  declare -gA guest_dir=()
  conc_kernel=${BENCH_CONC_KERNEL:-debian}
  guest_dir[$conc_kernel]=$(make_guest "$conc_kernel")
  local payload n i j d t0 first rc line builds
  payload=$(awk -v a="$conc_scale" -v b="$scale" 'BEGIN { printf "%g", a * b }')
  say "concurrency: building the image (busybox + Debian-rootfs shape × $payload)"
  busybox_image "$work/oci-cc" cc "$payload"
  rec conc/layer_bytes "$(stat -c %s "$(layer_of "$work/oci-cc" cc)")"
  conc_levels=()
  for n in $levels; do conc_levels+=("$n"); done
  for ((i = 0; i < runs; i++)); do
    for n in "${conc_levels[@]}"; do
      say "concurrency: $n concurrent starts, round $((i + 1))/$runs"
      d=$work/c$n-$i
      mkdir -p "$d"
      local pids=()
      t0=$(now_us)
      for ((j = 0; j < n; j++)); do
        conc_start "$d" "$j" &
        pids+=("$!")
        bg_pids+=("$!")
      done
      wait "${pids[@]}" || true
      builds=0
      local slowest=0
      for ((j = 0; j < n; j++)); do
        rc=$(cat "$d.o$j.rc" 2>/dev/null || echo "?")
        read -r first line <"$d.o$j.first" || true
        if [ "$rc" != 0 ] || [ "$line" != up ]; then
          cat "$d.o$j.err" >&2
          die "concurrency: start $j of $n: exit $rc, first line \"$line\""
        fi
        t=$(calc "($first - $t0) / 1e6")
        rec "conc/$n/start" "$t"
        awk -v a="$t" -v b="$slowest" 'BEGIN { exit !(a > b) }' && slowest=$t
        parse_timings "$d.o$j.err" "conc/$n/phase"
        builds=$((builds + $(grep -c 'Building root filesystem' "$d.o$j.err" || true)))
      done
      rec "conc/$n/slowest" "$slowest"
      rec "conc/$n/conversions" "$builds"
      rm -rf "$d" "$d".o*
      bg_pids=()
    done
  done
  rm -rf "$work/oci-cc"
  for n in "${conc_levels[@]}"; do
    trow concurrency "N=$n: launch → first output line, each start" "conc/$n/start" s
    trow concurrency "N=$n: slowest start of a round" "conc/$n/slowest" s
    trow concurrency "N=$n: image conversions per round" "conc/$n/conversions" "" %.0f
  done
  concurrency_minutes=$(section_minutes)
  [ "$write_docs" = 1 ] && concurrency_doc
  return 0
}

# conc_start DIR J: one `run` of the concurrency image; DIR.oJ.{first,rc,err}: when its first stdout line came
# (µs since the epoch) and what it was, its exit code, its stderr (timings and events).
conc_start() {
  local d=$1 j=$2 o=$1.o$2
  set +e
  NFC_SHIM_PATH=$shim timeout --kill-after=30 600 "$cli" run --timings --data-dir "$d" \
    --kernel "${guest_dir[$conc_kernel]}/vmlinux" --initrd "${guest_dir[$conc_kernel]}/initramfs.cpio.gz" \
    "oci:$work/oci-cc:cc" -- /bin/sh -c 'echo up' 2>"$o.err" |
    {
      IFS= read -r line
      t=$EPOCHREALTIME
      printf '%s %s\n' "${t/./}" "$line" >"$o.first"
      cat >/dev/null
    }
  echo "${PIPESTATUS[0]}" >"$o.rc"
}
