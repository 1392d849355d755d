# shellcheck shell=bash disable=SC2034,SC2154  # globals shared with bench/run and the other lib files
# bench/lib/rss.sh, sourced by bench/run: section 4, resident memory. VmRSS and Pss of the plugin, the
# shims and the VMMs, sampled while the Go conformance harness runs a scenario. Its docs/performance.md
# block and plot: rss_doc in docs.sh.

# ---------------------------------------------------------------------------------------------------------
# Section 4: RSS
# KiB of VmRSS and Pss of PID ("0 0" when gone)
mem_of() {
  local k v rss=0 pss=0
  while read -r k v _; do [ "$k" = VmRSS: ] && rss=$v; done 2>/dev/null <"/proc/$1/status" || true
  while read -r k v _; do [ "$k" = Pss: ] && pss=$v; done 2>/dev/null <"/proc/$1/smaps_rollup" || true
  echo "$rss $pss"
}

# One sample of the harness run's processes: the plugin (command line = our plugin binary alone, as go-plugin
# starts it), the shims ("OUR_SHIM start TASK_DIR") and the VMMs (children of the shims). Prints "plugin_pid
# plugin_rss plugin_pss tasks shim_rss_max shim_pss_max vmm_rss_max vmm_pss_max" (KiB).
re_escape() { printf '%s' "$1" | sed 's/[][\\.*^$+?(){}|]/\\&/g'; }
rss_sample() {
  local plugin_pid shims=() vmms=() tasks p r s pr=0 pp=0 sr=0 sp=0 vr=0 vp=0
  plugin_pid=$(pgrep -o -x -f -- "$plugin_re" || true)
  tasks=$(pgrep -a -f -- "^$shim_re start " | awk '{ print $4 }' | sort -u | grep -c . || true)
  mapfile -t shims < <(pgrep -f -- "^$shim_re start " || true)
  if [ ${#shims[@]} -gt 0 ]; then
    mapfile -t vmms < <(pgrep -P "$(IFS=,; echo "${shims[*]}")" || true)
  fi
  [ -n "$plugin_pid" ] && read -r pr pp < <(mem_of "$plugin_pid")
  for p in "${shims[@]}"; do
    read -r r s < <(mem_of "$p")
    [ "$r" -gt "$sr" ] && sr=$r
    [ "$s" -gt "$sp" ] && sp=$s
  done
  for p in "${vmms[@]}"; do
    read -r r s < <(mem_of "$p")
    [ "$r" -gt "$vr" ] && vr=$r
    [ "$s" -gt "$vp" ] && vp=$s
  done
  echo "${plugin_pid:-0} $pr $pp $tasks $sr $sp $vr $vp"
}

section_rss() {
  section_timer_start
  ensure_packages gnuplot-nox
  ensure_built nomad-driver-firecracker nomad-fc-shim guest-artifacts nfc-harness-env
  if [ ! -x "$harness_env" ] || [ ! -x "$conformance" ]; then die "the conformance harness is not built in $build"; fi
  local i hpid samples rc
  rss_kernel=$(sed -n 's/^PACKAGE=//p' "$build/guest/kernel.env" 2>/dev/null || echo "?")
  plugin_re=$(re_escape "$cli")
  shim_re=$(re_escape "$shim")
  for ((i = 0; i < runs; i++)); do
    say "rss: conformance scenario $rss_scenario, run $((i + 1))/$runs"
    samples=$work/rss.$i
    : >"$samples"
    "$harness_env" --timeout 400 -- "$conformance" -plugin "$cli" -lifecycle -run "^${rss_scenario}\$" \
      >"$work/rss.log" 2>&1 &
    hpid=$!
    bg_pids+=("$hpid")
    while kill -0 "$hpid" 2>/dev/null; do
      rss_sample >>"$samples"
      sleep 0.1
    done
    rc=0
    wait "$hpid" || rc=$?
    bg_pids=()
    if [ "$rc" -ne 0 ] || ! grep -q "^ok " "$work/rss.log"; then
      cat "$work/rss.log" >&2
      die "the conformance scenario $rss_scenario failed (exit $rc)"
    fi
    awk '$1 > 0 { p = 1 } $4 > 0 { t = 1 } END { exit !(p && t) }' "$samples" ||
      die "rss: no sample saw both the plugin ($cli) and a task's shim ($shim): nothing to report"
    # plugin alone (before the first shim) and while tasks run; per-shim and per-VMM maxima
    awk -v k="rss" '
      $1 > 0 && $4 == 0 && !seen { if ($2 > ir) ir = $2; if ($3 > ip) ip = $3 }
      $4 > 0 { seen = 1; if ($2 > tr) tr = $2; if ($3 > tp) tp = $3; if ($5 > sr) sr = $5; if ($6 > sp) sp = $6
               if ($7 > vr) vr = $7; if ($8 > vp) vp = $8; if ($4 > n) n = $4; m++ }
      END { if (ir) { print "plugin_idle_rss", ir; print "plugin_idle_pss", ip }
            print "plugin_task_rss", tr; print "plugin_task_pss", tp; print "shim_rss", sr; print "shim_pss", sp
            print "vmm_rss", vr; print "vmm_pss", vp; print "tasks", n; print "samples", m }' "$samples" |
      while read -r name value; do rec "rss/$name" "$value"; done
  done
  trow rss "plugin before any task: VmRSS" rss/plugin_idle_rss KiB %.0f
  trow rss "plugin before any task: Pss" rss/plugin_idle_pss KiB %.0f
  trow rss "plugin while tasks run: VmRSS (max)" rss/plugin_task_rss KiB %.0f
  trow rss "plugin while tasks run: Pss (max)" rss/plugin_task_pss KiB %.0f
  trow rss "shim per task: VmRSS (max)" rss/shim_rss KiB %.0f
  trow rss "shim per task: Pss (max)" rss/shim_pss KiB %.0f
  trow rss "VMM (QEMU) per task: VmRSS (max)" rss/vmm_rss KiB %.0f
  rss_minutes=$(section_minutes)
  [ "$write_docs" = 1 ] && rss_doc
  return 0
}
