# shellcheck shell=bash disable=SC2154  # globals shared with bench/run and the other lib files
# bench/lib/docs.sh, sourced by bench/run: the output. Each section's docs/performance.md block with its
# gnuplot plots and .tsv data (conversion_doc, boot_doc, concurrency_doc, rss_doc), the machine block, the
# assembly of docs/performance.md, and the table printed at the end.

# ---------------------------------------------------------------------------------------------------------
# Section 1: image conversion
conversion_doc() {
  local shape key md=$work/md.conversion dat=$plots/conversion.tsv sdat=$plots/scaling.tsv s
  mkdir -p "$plots"
  {
    printf 'shape\t'
    printf '%s\t' gzip gzip_min gzip_max ours ours_min ours_max chain chain_min chain_max erofs erofs_min erofs_max
    echo
    for shape in "${conv_shapes[@]}"; do
      printf '%s' "$(shape_title "$shape")"
      for k in gzip ours chain erofs; do printf '\t%s' "$(tabs3 "conv/$shape/$k")"; done
      echo
    done
  } >"$dat"
  {
    printf 'scale\tcontent_mb\tgzip\tgzip_min\tgzip_max\tours\tours_min\tours_max\tchain\tchain_min\tchain_max\n'
    for s in "${scaling_points[@]}"; do
      printf '%s\t%s' "$s" "$(awk -v b="$(med "scale/$s/bytes")" 'BEGIN { printf "%.1f", b / 1e6 }')"
      for k in gzip ours chain; do printf '\t%s' "$(tabs3 "scale/$s/$k")"; done
      echo
    done
  } >"$sdat"
  gnuplot <<EOF
set terminal pngcairo size 960,540 font "sans,10"
set datafile separator "\t"
set key autotitle columnhead
set output "$plots/conversion.png"
set title "Image conversion (median of $runs; bars: min–max)"
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.85 border -1
set ylabel "seconds"
set yrange [0:*]
set xrange [-0.6:${#conv_shapes[@]}-0.4]
set key below
set grid ytics
plot "$dat" using 2:3:4:xtic(1) title "gzip -dc (decompression floor)", \
     "" using 5:6:7 title "ours (nfc-image-tool pull)", \
     "" using 8:9:10 title "umoci unpack + mkfs.ext4 -d", \
     "" using 11:12:13 title "mkfs.erofs of the unpacked tree"
set output "$plots/scaling.png"
set title "Conversion time vs image size, Debian-rootfs shape (median of $runs; bars: min–max)"
set style data yerrorlines
set autoscale x
set key inside top left vertical
set xlabel "content (MB)"
set xrange [0:*]
plot "$sdat" using 2:3:4:5 title "gzip -dc" pt 7, \
     "" using 2:6:7:8 title "ours" pt 5, \
     "" using 2:9:10:11 title "umoci unpack + mkfs.ext4 -d" pt 9
EOF
  {
    quick_banner conversion
    echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') with \`RUNS=$runs BENCH_SCALE=$scale bench/run conversion\`" \
      "(git $git_rev); this section took $conversion_minutes min. Median of $runs run(s), min–max in brackets."
    echo
    echo "What runs, per round (the order rotates each round; the layer sits in the page cache for every tool" \
      "$([ "$drop" = 1 ] && echo "— no: DROP_CACHES=1 dropped it before each timed step" || echo "(DROP_CACHES=0)"),"\
      "and every tool's output is fsynced):"
    echo
    echo "* **gzip -dc**: \`gzip -dc LAYER > /dev/null\`, the floor any converter of a gzip layer pays."
    echo "* **ours**: \`nfc-image-tool ${tool_prefix[*]:+${tool_prefix[*]} }pull --data-dir DIR oci:LAYOUT:TAG\` into an" \
      "empty cache (Release build, not sanitized): verify and copy the blob into the cache, layers → ext4, fsync." \
      "The first image of each shape passes \`e2fsck -fn\`."
    echo "* **umoci unpack + mkfs.ext4 -d**: the chain a shell script would use (run as root here): \`umoci unpack\`," \
      "then \`mkfs.ext4 -d TREE\` (size: content × 1.3 + 64 MiB; inodes: files × 1.25 + 4096), then fsync."
    echo "* **mkfs.erofs**: \`mkfs.erofs IMG TREE\` (erofs-utils $(dpkg-query -W -f '${Version}' erofs-utils 2>/dev/null)," \
      "uncompressed) on the tree umoci unpacked, a reference point for the tree → image step only."
    echo
    echo "| image | files | content | gzip layer | tar | gzip -dc (s) | ours (s) | umoci unpack (s) | mkfs.ext4 -d (s) | umoci + mkfs.ext4 (s) | mkfs.erofs (s) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for shape in "${conv_shapes[@]}"; do
      key=conv/$shape
      printf '| %s | %s | %s MB | %s MB | %s MB | %s | %s | %s | %s | %s | %s |\n' "$(shape_title "$shape")" \
        "$(med "$key/files")" "$(awk -v b="$(med "$key/bytes")" 'BEGIN { printf "%.0f", b / 1e6 }')" \
        "$(awk -v b="$(med "$key/layer_bytes")" 'BEGIN { printf "%.0f", b / 1e6 }')" \
        "$(awk -v b="$(med "$key/tar_bytes")" 'BEGIN { printf "%.0f", b / 1e6 }')" \
        "$(cell "$key/gzip")" "$(cell "$key/ours")" "$(cell "$key/unpack")" "$(cell "$key/mkfs")" \
        "$(cell "$key/chain")" "$(cell "$key/erofs")"
    done
    echo
    echo "Ratios (each round's own pair, median and min–max over rounds), output sizes and whether our converter" \
      "decompressed each layer once:"
    echo
    echo "| image | ours / gzip -dc | (umoci + mkfs.ext4) / ours | our ext4 (apparent / allocated) | mkfs.erofs image | \`gzip -dc \\| wc -c\` | meta.json tar_bytes | layer_passes / layers | decompressed once |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
    for shape in "${conv_shapes[@]}"; do
      key=conv/$shape
      printf '| %s | %s× | %s× | %s / %s MiB | %s MiB | %s | %s | %s / %s | %s |\n' "$(shape_title "$shape")" \
        "$(cell "$key/ratio_ours_gzip")" "$(cell "$key/ratio_chain_ours")" \
        "$(awk -v b="$(med "$key/ours_apparent")" 'BEGIN { printf "%.0f", b / 1048576 }')" \
        "$(awk -v b="$(med "$key/ours_allocated")" 'BEGIN { printf "%.0f", b / 1048576 }')" \
        "$(awk -v b="$(med "$key/erofs_bytes")" 'BEGIN { printf "%.0f", b / 1048576 }')" \
        "$(med "$key/tar_bytes")" "$(vals "$key/meta_tar_bytes" | head -1)" \
        "$(vals "$key/meta_layer_passes" | head -1)" "$(vals "$key/meta_layers" | head -1)" "$(decompressed_once "$key")"
    done
    echo
    echo "\"Decompressed once\" compares meta.json's \`tar_bytes\` (decompressed tar bytes our converter read over" \
      "all layers) and \`layer_passes\` with the layer's \`gzip -dc | wc -c\` and the layer count; n/a: this" \
      "converter does not write those keys yet."
    echo
    echo "Shapes (every file and symlink below the directories, as on this machine):"
    echo
    echo "* many small files: \`$(shape_sources small)\` (\`-DIR\`: left out)"
    echo "* Debian-rootfs shape: \`$(shape_sources debian)\`"
    echo "* one large file: $(awk -v s="$scale" 'BEGIN { n = int(300 * s + 0.5); print (n < 3 ? 3 : n) }') MiB of" \
      "1 MiB chunks taken in turn from an AES-CTR stream (incompressible), text (Perl, headers, docs) and" \
      "binaries (/usr/bin, /usr/lib)."
    echo
    echo "![conversion times](performance/conversion.png)"
    echo
    echo "Scaling: the Debian-rootfs shape at × ${scaling// /, × } (fractions keep every" \
      "k-th file, factors above 1 copy the whole tree again under /copyN), same procedure without mkfs.erofs:"
    echo
    echo "| size | files | content | gzip layer | gzip -dc (s) | ours (s) | umoci + mkfs.ext4 (s) | ours / gzip -dc | (umoci + mkfs.ext4) / ours |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for s in "${scaling_points[@]}"; do
      printf '| × %s | %s | %s MB | %s MB | %s | %s | %s | %s× | %s× |\n' "$s" "$(med "scale/$s/files")" \
        "$(awk -v b="$(med "scale/$s/bytes")" 'BEGIN { printf "%.0f", b / 1e6 }')" \
        "$(awk -v b="$(med "scale/$s/layer_bytes")" 'BEGIN { printf "%.0f", b / 1e6 }')" \
        "$(cell "scale/$s/gzip")" "$(cell "scale/$s/ours")" "$(cell "scale/$s/chain")" \
        "$(ratio_cell "scale/$s/ours" "scale/$s/gzip")" "$(ratio_cell "scale/$s/chain" "scale/$s/ours")"
    done
    echo
    echo "![conversion time vs image size](performance/scaling.png)"
  } >"$md"
}

# ---------------------------------------------------------------------------------------------------------
# Section 2: start-up breakdown
boot_doc() {
  local md=$work/md.boot dat=$plots/boot.tsv sdat=$plots/startup.tsv k s p
  mkdir -p "$plots"
  {
    printf 'bar\tVMM start\tto kernel start\tkernel start -> init\tinit -> workload execve\texecve -> exit\texit -> VMM end\n'
    for k in "${boot_kernels[@]}"; do
      for s in "${boot_series[@]}"; do
        printf '%s: %s' "$k" "$(series_title "$s")"
        for p in "${boot_phases[@]:0:6}"; do printf '\t%s' "$(med "boot/$k/$s/$p")"; done
        echo
      done
    done
  } >"$dat"
  {
    printf 'kernel\timage (cache hit)\tprepare\tVMM start\tboot to workload\n'
    for k in "${boot_kernels[@]}"; do
      printf '%s kernel' "$k"
      for p in image prepare vmm boot; do printf '\t%s' "$(med "start/$k/$p")"; done
      echo
    done
  } >"$sdat"
  gnuplot <<EOF
set terminal pngcairo size 1100,560 font "sans,10"
set datafile separator "\t"
set key autotitle columnhead
set output "$plots/boot.png"
set title "Boot phases of /bin/true per kernel and VMM set-up ($boot_accel; medians of $runs)"
set style data histogram
set style histogram rowstacked
set style fill solid 0.85 border -1
set boxwidth 0.7
set ylabel "ms"
set yrange [0:*]
set key outside right
set grid ytics
set xtics rotate by 30 right
set bmargin 9
plot for [c=2:7] "$dat" using c:xtic(1) title columnheader(c)
set terminal pngcairo size 760,480 font "sans,10"
set output "$plots/startup.png"
set xtics norotate
unset bmargin
set title "StartTask → workload started (run --timings, cached image; medians of $runs)"
plot for [c=2:5] "$sdat" using c:xtic(1) title columnheader(c)
EOF
  {
    quick_banner boot
    echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') with \`RUNS=$runs bench/run boot\` (git $git_rev), accelerator" \
      "**$boot_accel**; this section took $boot_minutes min. Median of $runs runs, min–max in brackets, ms."
    echo
    echo "\`bench-boot-bin 1\` (bench/boot_bench.cc, Release build) boots \`/bin/true\` once per VMM set-up" \
      "(QEMU microvm; Firecracker's backend through the booting stand-in; QEMU sandboxed; Firecracker through" \
      "the jailer stand-in), called $runs time(s) per kernel with the kernels alternating call by call" \
      "(\`NFC_GUEST_DIR\` → a guest dir made by \`scripts/guest-kernel --kernel debian|tuned\`). Guest phases" \
      "are nomad-init's CLOCK_MONOTONIC stamps; the kernel's start is placed on the host timeline from the" \
      "exit report. It covers VMM spawn → VMM gone; not the image or the task's preparation, which the second" \
      "table below gives from StartTask's own timings."
    echo
    echo "| kernel | VMM set-up | VMM start | → kernel start | kernel → init | init → execve | execve → exit | exit → VMM end | total |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    for k in "${boot_kernels[@]}"; do
      for s in "${boot_series[@]}"; do
        printf '| %s | %s |' "$k" "$(series_title "$s")"
        for p in "${boot_phases[@]}"; do printf ' %s |' "$(cell "boot/$k/$s/$p" %.0f)"; done
        echo
      done
    done
    echo
    if [ ${#boot_kernels[@]} -ge 2 ]; then
      echo "Ratio ${boot_kernels[0]} / ${boot_kernels[1]} (per run pair):"
      echo
      echo "| VMM set-up | → kernel start | kernel → init | init → execve | total |"
      echo "|---|---:|---:|---:|---:|"
      for s in "${boot_series[@]}"; do
        printf '| %s |' "$(series_title "$s")"
        for p in to-kernel kernel-init init-execve total; do
          printf ' %s× |' "$(ratio_cell "boot/${boot_kernels[0]}/$s/$p" "boot/${boot_kernels[1]}/$s/$p")"
        done
        echo
      done
      echo
    fi
    echo "| kernel | vmlinux | initramfs.cpio.gz (with nomad-init) |"
    echo "|---|---:|---:|"
    for k in "${boot_kernels[@]}"; do
      printf '| %s | %s bytes | %s bytes |\n' "$k" "$(med "bootinfo/$k/vmlinux")" "$(med "bootinfo/$k/initramfs")"
    done
    echo
    echo "![boot phases](performance/boot.png)"
    echo
    echo "StartTask → workload started, from the task manager's own timings: \`nomad-driver-firecracker run" \
      "--timings\` (QEMU backend, sandboxed, the plugin's defaults) of a busybox image already in the cache" \
      "(one untimed run first), workload \`/bin/true\`. *image* = resolve and lease (a cache hit here; a cold" \
      "conversion is in the concurrency section), *prepare* = task dir, scratch disk, task initramfs, *VMM" \
      "start* = shim spawned until the VMM runs, *boot* = VMM running until the guest reports the workload" \
      "started; *wall* = the whole \`run\` process including the VM's shutdown."
    echo
    echo "| kernel | image | prepare | VMM start | boot to workload | total | wall of \`run\` (s) |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for k in "${boot_kernels[@]}"; do
      printf '| %s |' "$k"
      for p in image prepare vmm boot total; do printf ' %s |' "$(cell "start/$k/$p" %.0f)"; done
      printf ' %s |\n' "$(cell "start/$k/wall")"
    done
    echo
    echo "![StartTask phases](performance/startup.png)"
  } >"$md"
}

# ---------------------------------------------------------------------------------------------------------
# Section 3: concurrent starts
concurrency_doc() {
  local md=$work/md.concurrency dat=$plots/concurrency.tsv n
  mkdir -p "$plots"
  {
    printf 'n\tstart\tstart_min\tstart_max\tslowest\tslowest_min\tslowest_max\timage\timage_min\timage_max\n'
    for n in "${conc_levels[@]}"; do
      printf '%s\t%s\t%s' "$n" "$(tabs3 "conc/$n/start")" "$(tabs3 "conc/$n/slowest")"
      printf '\t%s' "$(stat3 "conc/$n/phase/image" | awk '{ printf "%s\t%s\t%s", $1 / 1000, $2 / 1000, $3 / 1000 }')"
      echo
    done
  } >"$dat"
  gnuplot <<EOF
set terminal pngcairo size 800,500 font "sans,10"
set datafile separator "\t"
set key autotitle columnhead
set output "$plots/concurrency.png"
set title "Concurrent starts of one uncached image ($runs rounds; bars: min–max)"
set style data yerrorlines
set xlabel "concurrent starts (N)"
set ylabel "launch → workload's first output line (s)"
set xrange [0:${conc_levels[-1]}+1]
set xtics 1
set yrange [0:*]
set key top left
set grid
plot "$dat" using 1:2:3:4 title "each start (median over all starts)" pt 7, \
     "" using 1:5:6:7 title "slowest start of a round (median over rounds)" pt 5, \
     "" using 1:8:9:10 title "its image phase (pull + convert, or wait for it)" pt 9
EOF
  {
    quick_banner concurrency
    echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') with \`RUNS=$runs BENCH_SCALE=$scale bench/run concurrency\`" \
      "(git $git_rev); this section took $concurrency_minutes min. $runs round(s) per N; seconds."
    echo
    echo "Each round starts N \`nomad-driver-firecracker run --timings --data-dir D oci:LAYOUT:cc -- /bin/sh -c" \
      "'echo up'\` processes at once, all sharing one fresh data dir (so one empty image cache: the image is" \
      "uncached for every round), on the $conc_kernel kernel, QEMU backend sandboxed (the defaults). Each" \
      "start is timed from the moment the round was launched to the moment its workload's first output line" \
      "(\`up\`) came out of \`run\`'s stdout: pull from the OCI layout, conversion (once: the image store's" \
      "single flight makes the other starts wait for it), task preparation, VMM start, boot, the workload's" \
      "write, and the log path back (shim → FIFO → \`run\`). The image: busybox plus the Debian-rootfs shape" \
      "× $payload ($(awk -v b="$(med conc/layer_bytes)" 'BEGIN { printf "%.0f", b / 1e6 }') MB gzip layer)." \
      "Each \`run\` is its own task manager (the code the plugin runs) in its own process; the plugin serves" \
      "concurrent StartTask calls from one process with the same image store and locks."
    echo
    echo "| N | each start: median (min–max) | slowest start of a round | image phase of each start | boot to workload of each start | conversions per round |"
    echo "|---:|---:|---:|---:|---:|---:|"
    for n in "${conc_levels[@]}"; do
      printf '| %s | %s | %s | %s ms | %s ms | %s |\n' "$n" "$(cell "conc/$n/start")" "$(cell "conc/$n/slowest")" \
        "$(cell "conc/$n/phase/image" %.0f)" "$(cell "conc/$n/phase/boot" %.0f)" "$(cell "conc/$n/conversions" %.0f)"
    done
    echo
    if [ ${#conc_levels[@]} -ge 2 ]; then
      echo "Slowest start at N=${conc_levels[-1]} / a single start: $(awk -v a="$(med "conc/${conc_levels[-1]}/slowest")" \
        -v b="$(med "conc/${conc_levels[0]}/start")" 'BEGIN { printf "%.2f", a / b }')× (medians)."
      echo
    fi
    echo "![concurrent starts](performance/concurrency.png)"
  } >"$md"
}

# ---------------------------------------------------------------------------------------------------------
# Section 4: RSS
rss_doc() {
  local md=$work/md.rss dat=$plots/rss.tsv
  mkdir -p "$plots"
  {
    printf 'process\tVmRSS\tmin\tmax\tPss\tmin\tmax\n'
    printf 'plugin, no task\t%s\t%s\n' "$(tabs3 rss/plugin_idle_rss)" "$(tabs3 rss/plugin_idle_pss)"
    printf 'plugin, tasks running\t%s\t%s\n' "$(tabs3 rss/plugin_task_rss)" "$(tabs3 rss/plugin_task_pss)"
    printf 'shim (per task)\t%s\t%s\n' "$(tabs3 rss/shim_rss)" "$(tabs3 rss/shim_pss)"
  } >"$dat"
  gnuplot <<EOF
set terminal pngcairo size 760,460 font "sans,10"
set datafile separator "\t"
set key autotitle columnhead
set output "$plots/rss.png"
set title "Resident memory (median of $runs runs; bars: min–max)"
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.85 border -1
set ylabel "MiB"
set yrange [0:*]
set xrange [-0.6:2.6]
set key below
set grid ytics
plot "$dat" using (\$2/1024):(\$3/1024):(\$4/1024):xtic(1) title "VmRSS", \
     "" using (\$5/1024):(\$6/1024):(\$7/1024) title "Pss"
EOF
  {
    quick_banner rss
    echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') with \`RUNS=$runs bench/run rss\` (git $git_rev); this" \
      "section took $rss_minutes min. KiB; median of $runs runs, min–max in brackets."
    echo
    echo "The plugin runs as a Nomad client runs it: the Go conformance harness (tests/conformance) launches" \
      "the Release \`nomad-driver-firecracker\` through go-plugin and drives the scenario \`$rss_scenario\`" \
      "(real guests from a local registry, inside tests/lifecycle's \`nfc-harness-env\`; guest kernel" \
      "$rss_kernel). Every 0.1 s the script reads VmRSS (\`/proc/PID/status\`) and Pss" \
      "(\`/proc/PID/smaps_rollup\`) of the plugin, of every \`nomad-fc-shim\` and of the shims' children (the" \
      "VMM). *Before any task*: the plugin after launch, configuration and fingerprinting, before the first" \
      "shim exists (the first StartTask may be pulling the image by then); *while tasks run*: the largest value while at least one shim lives (up to" \
      "$(med rss/tasks) tasks at once in this scenario). Each run's maximum, then the median over runs."
    echo
    echo "| process | VmRSS (KiB) | Pss (KiB) |"
    echo "|---|---:|---:|"
    echo "| plugin, before any task | $(cell rss/plugin_idle_rss %.0f) | $(cell rss/plugin_idle_pss %.0f) |"
    echo "| plugin, while tasks run | $(cell rss/plugin_task_rss %.0f) | $(cell rss/plugin_task_pss %.0f) |"
    echo "| shim, per task | $(cell rss/shim_rss %.0f) | $(cell rss/shim_pss %.0f) |"
    echo "| VMM (QEMU, sandboxed), per task | $(cell rss/vmm_rss %.0f) | $(cell rss/vmm_pss %.0f) |"
    echo
    echo "![resident memory](performance/rss.png)"
  } >"$md"
}

# ---------------------------------------------------------------------------------------------------------
# The machine block: the facts machine_facts (common.sh) gathered, and how to reproduce.
machine_md() {
  echo "Machine of the last run ($(date -u '+%Y-%m-%d %H:%M UTC'), git $git_rev):"
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| CPU | $cpu_model, $cores cores (\`nproc\`) |"
  echo "| memory | $mem_gib GiB |"
  echo "| kernel | $kernel_release |"
  echo "| accelerator | $accel |"
  echo "| disk (work dir $(dirname "$work")) | $disk_desc |"
  echo "| tools | $versions |"
  echo "| our binaries | \`${build#"$root"/}\`, Release, not sanitized$([ "$build_source" = "$root" ] || echo ", built from $build_source (not this checkout)") |"
  echo "| load average when the run started | $load_before |"
  echo
  echo "Reproduce everything (as root, from the repository's root; the first run also configures and builds" \
    "\`build/bench\`, a Release tree without sanitizers, and builds the tuned kernel if it is not cached):"
  echo
  echo '```sh'
  echo "RUNS=5 bench/run                      # all four sections, then this file and docs/performance/*.png"
  echo "RUNS=5 bench/run conversion           # or one section: conversion | boot | concurrency | rss"
  echo "RUNS=1 BENCH_SCALE=0.1 bench/run      # a quick check of the script (small images, one run)"
  echo '```'
  echo
  echo "Every figure comes from one invocation: the things compared run side by side, alternating run by run," \
    "and ratios are taken per run pair. \`bench/run --help\` lists the knobs (sizes, N, kernels, scenario)."
  [ -n "${total_minutes:-}" ] && echo && echo "This invocation ($(IFS=' '; echo "${sections[*]}"), RUNS=$runs," \
    "BENCH_SCALE=$scale) took $total_minutes min."
  return 0
}

# ---------------------------------------------------------------------------------------------------------
# docs/performance.md: the fixed text below plus one block per section, each between markers; a section not
# run this time keeps its block from the previous file.
section_heading() {
  case "$1" in
    machine) echo "## Machine and how to reproduce" ;;
    conversion) echo "## 1. Image conversion" ;;
    boot) echo "## 2. Start-up breakdown" ;;
    concurrency) echo "## 3. Concurrent starts" ;;
    rss) echo "## 4. Resident memory" ;;
  esac
}

old_block() {  # NAME: the block from the current docs/performance.md, if there is one
  [ -f "$docs/performance.md" ] || return 0
  awk -v first="<!-- bench:$1 -->" -v last="<!-- /bench:$1 -->" '
    $0 == last { inside = 0 } inside { print } $0 == first { inside = 1 }' "$docs/performance.md"
}

write_performance_md() {
  local out=$docs/performance.md.tmp name
  machine_md >"$work/md.machine"
  {
    echo "# Performance"
    echo
    echo "Generated by \`bench/run\` (issue 18, item 3): the benchmark suite prints one table and rewrites this file" \
      "and the plots in \`docs/performance/\` (with their data as .tsv). Each section below says when and how it" \
      "was measured; a section run on its own replaces only its own block. Not a test: nothing here passes or" \
      "fails. The figures are from a small VM without KVM: they compare alternatives on the same machine in" \
      "the same run, they are not absolute speeds (see \"What these machines cannot show\" in the README)."
    for name in machine conversion boot concurrency rss; do
      echo
      section_heading "$name"
      echo
      echo "<!-- bench:$name -->"
      if [ -f "$work/md.$name" ]; then
        cat "$work/md.$name"
      elif [ -n "$(old_block "$name")" ]; then
        old_block "$name"
      else
        echo "_Not measured yet: run \`bench/run $name\`._"
      fi
      echo "<!-- /bench:$name -->"
    done
  } >"$out"
  mv "$out" "$docs/performance.md"
}

print_table() {
  local title="bench/run: ${sections[*]}; RUNS=$runs, BENCH_SCALE=$scale; median (min–max)"
  echo
  echo "$title"
  # Plain ASCII on the terminal: awk counts bytes, and the dash and arrow are three each.
  sed 's/–/-/g; s/→/->/g; s/×/x/g' "$table" | awk -F'\t' 'BEGIN { w1 = 7; w2 = 11; w3 = 5 }
              { w1 = length($1) > w1 ? length($1) : w1; w2 = length($2) > w2 ? length($2) : w2
                w3 = length($3) > w3 ? length($3) : w3; r[NR] = $0 }
    END { fmt = "%-" w1 "s  %-" w2 "s  %" w3 "s  %s\n"
          printf fmt, "section", "measurement", "value", "unit"
          for (i = 1; i <= NR; i++) { split(r[i], f, "\t"); printf fmt, f[1], f[2], f[3], f[4] } }' 
  echo "machine: $cpu_model, $cores cores, kernel $kernel_release, ${accel%%:*}; disk: $disk_desc"
}
