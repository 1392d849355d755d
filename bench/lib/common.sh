# shellcheck shell=bash disable=SC2034,SC2154  # globals shared with bench/run and the other lib files
# bench/lib/common.sh, sourced by bench/run: the shared helpers. Logging, the processes of a work dir (for
# cleanup), raw measurements and their statistics (median, min–max, ratios), timing, the Debian packages and
# the build of the bench tree, guest kernels, and the facts about the machine.

say() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf 'bench/run: %s\n' "$*" >&2; exit 1; }

pids_mentioning() {  # NEEDLE -> pids (not this shell) whose command line contains NEEDLE
  local f p args
  for f in /proc/[0-9]*/cmdline; do
    p=${f#/proc/}
    p=${p%/cmdline}
    [ "$p" = "$$" ] && continue
    mapfile -d '' -t args 2>/dev/null <"$f" || continue
    [[ "${args[*]}" == *"$1"* ]] && echo "$p"
  done
  return 0
}

# ---------------------------------------------------------------------------------------------------------
# Measurements: raw values in $work/raw.tsv (KEY<TAB>VALUE, one line per run), summarized as median and
# min–max.
rec() { printf '%s\t%s\n' "$1" "$2" >>"$raw"; }
vals() { awk -F'\t' -v k="$1" '$1 == k { print $2 }' "$raw"; }
# KEY -> "median min max" ("- - -" when nothing was recorded)
stat3() {
  vals "$1" | sort -g | awk '{ a[NR] = $1 }
    END { if (!NR) { print "- - -"; exit }
          m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; print m, a[1], a[NR] }'
}
med() { local m; read -r m _ < <(stat3 "$1"); echo "$m"; }
tabs3() { stat3 "$1" | tr ' ' '\t'; }  # KEY -> "median<TAB>min<TAB>max"
# KEY [PRINTF-FORMAT] -> "median (min–max)", or "median" for one value, or "n/a"
cell() {
  vals "$1" | sort -g | awk -v f="${2:-%.2f}" '{ a[NR] = $1 }
    END { if (!NR) { print "n/a"; exit }
          m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
          if (NR == 1 || a[1] == a[NR]) printf(f "\n", m); else printf(f " (" f "–" f ")\n", m, a[1], a[NR]) }'
}
# One row of the printed table: SECTION LABEL KEY UNIT [FORMAT]
trow() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$(cell "$3" "${5:-%.2f}")" "$4" >>"$table"; }
# A row whose value is text: SECTION LABEL TEXT [UNIT]
trow_text() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-}" >>"$table"; }
# ratio_cell A B: per-run ratios A_i / B_i (runs recorded in the same order), "median (min–max)"
ratio_cell() {
  paste <(vals "$1") <(vals "$2") | awk '$2 > 0 { print $1 / $2 }' | sort -g | awk '{ a[NR] = $1 }
    END { if (!NR) { print "n/a"; exit }
          m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
          if (NR == 1 || a[1] == a[NR]) printf("%.2f\n", m); else printf("%.2f (%.2f–%.2f)\n", m, a[1], a[NR]) }'
}

# timed VAR CMD...: runs CMD, puts its wall time in seconds into VAR (a failing CMD fails the script)
timed() {
  local __var=$1 __a __b __us __rc=0
  shift
  __a=$EPOCHREALTIME
  "$@" || __rc=$?
  __b=$EPOCHREALTIME
  __us=$((${__b/./} - ${__a/./}))
  printf -v "$__var" '%d.%06d' $((__us / 1000000)) $((__us % 1000000))
  return "$__rc"
}
now_us() { local t=$EPOCHREALTIME; printf '%s\n' "${t/./}"; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
drop_caches() {
  if [ "$drop" = 1 ]; then sync; echo 3 >/proc/sys/vm/drop_caches; fi
}
section_timer_start() { section_t0=$EPOCHREALTIME; }
# Printed at the top of a section's block when the run was a quick check rather than a measurement.
quick_banner() {
  if [ "$runs" -lt 5 ] || ! awk -v s="$scale" 'BEGIN { exit !(s == 1) }'; then
    echo "> **Placeholder, not a result:** this block comes from a quick check of the script (RUNS=$runs," \
      "BENCH_SCALE=$scale). Run \`RUNS=5 bench/run $1\` for the figures."
    echo
  fi
}
section_minutes() { awk -v us=$((${EPOCHREALTIME/./} - ${section_t0/./})) 'BEGIN { printf "%.1f", us / 60e6 }'; }

# ---------------------------------------------------------------------------------------------------------
# Dependencies: Debian packages (like scripts/bootstrap: only what is missing), and our binaries from a
# non-sanitized Release tree.
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
    { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; }
}

ensure_built() {  # TARGET...
  [ "${BENCH_NO_BUILD:-0}" = 1 ] && return 0
  if [ ! -f "$build/build.ninja" ]; then
    say "configuring $build (Release, not sanitized)"
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DNFC_SANITIZE=OFF -DNFC_TESTS=ON \
      >"$work/configure.log" 2>&1 || { tail -30 "$work/configure.log" >&2; die "cmake configure failed"; }
  fi
  say "building $* in $build"
  nice -n 10 cmake --build "$build" -j "$(nproc)" --target "$@" >"$work/build.log" 2>&1 ||
    { tail -40 "$work/build.log" >&2; die "build failed (BENCH_NO_BUILD=1 uses the binaries as they are)"; }
}

# make_guest KERNEL -> prints the guest dir (vmlinux + initramfs) for debian|tuned, made by scripts/guest-kernel
make_guest() {
  local k=$1 out=$build/bench-guest/$1
  if [ "$k" = tuned ] && ! compgen -G "${NFC_KERNEL_CACHE:-/var/cache/nomad-firecracker/kernel}/tuned-*/vmlinux" >/dev/null &&
    ! compgen -G "${XDG_CACHE_HOME:-/nonexistent}/nomad-firecracker/kernel/tuned-*/vmlinux" >/dev/null; then
    say "the tuned kernel is not cached: building it (about 6.5 min on 2 cores, once)"
  fi
  "$root/scripts/guest-kernel" --kernel "$k" --out "$out" --init "$init_bin" >"$work/guest-$k.log" 2>&1 ||
    { tail -20 "$work/guest-$k.log" >&2; die "scripts/guest-kernel --kernel $k failed"; }
  echo "$out"
}

# ---------------------------------------------------------------------------------------------------------
# The machine, stated once per invocation.
machine_facts() {
  local src dev disk rota fs mbps t
  cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  cores=$(nproc)
  kernel_release=$(uname -r)
  if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then accel="KVM (/dev/kvm usable)"; else accel="TCG (no usable /dev/kvm): guests run under QEMU's emulator"; fi
  mem_gib=$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
  src=$(df --output=source "$work" | tail -1)
  fs=$(df --output=fstype "$work" | tail -1)
  dev=$(lsblk -no PKNAME "$src" 2>/dev/null | head -1)
  [ -n "$dev" ] || dev=$(basename "$src")
  disk=$(lsblk -dno MODEL,SIZE "/dev/$dev" 2>/dev/null | sed 's/  */ /g; s/^ //')
  rota=$(lsblk -dno ROTA "/dev/$dev" 2>/dev/null | tr -d ' ')
  case "$rota" in 0) rota="reported non-rotational" ;; 1) rota="reported rotational" ;; *) rota="" ;; esac
  timed t dd if=/dev/zero of="$work/dd" bs=4M count=128 conv=fsync status=none
  rm -f "$work/dd"
  mbps=$(awk -v t="$t" 'BEGIN { printf "%.0f", 512 * 1.048576 / t }')
  disk_desc="/dev/$dev${disk:+ ($disk${rota:+, $rota})}, $fs; sequential write $mbps MB/s (dd 512 MiB, fsync)"
  git_rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
  build_source=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
  build_source=${build_source:-$root}
  if [ -n "$(GIT_OPTIONAL_LOCKS=0 git -C "$root" status --porcelain --untracked-files=no 2>/dev/null | head -1)" ]; then
    git_rev="$git_rev + uncommitted changes"
  fi
  versions="$(umoci --version 2>/dev/null | head -1); e2fsprogs $(dpkg-query -W -f '${Version}' e2fsprogs 2>/dev/null);"
  versions="$versions erofs-utils $(dpkg-query -W -f '${Version}' erofs-utils 2>/dev/null); gzip $(dpkg-query -W -f '${Version}' gzip 2>/dev/null);"
  versions="$versions QEMU $(dpkg-query -W -f '${Version}' qemu-system-x86 2>/dev/null); compiler $(c++ -dumpfullversion 2>/dev/null || echo '?')"
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
}
