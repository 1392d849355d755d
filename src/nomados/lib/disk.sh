# Sourced by nomados (src/nomados/nomados): boot files (syslinux, systemd-boot, Secure Boot chain), the disk (genimage), outputs and manifest.
# shellcheck shell=bash disable=SC2154,SC2034 # globals are shared with nomados and the other lib files

# A/B slots: the kernel and initramfs of slot X live in /X on the boot partition, its system in the partition
# nomados-system-X. Four boot entries (a, a-trial, b, b-trial); the default names the committed slot. An
# update asks for its trial entry once (syslinux's ADV, systemd-boot's LoaderEntryOneShot, GRUB's grubenv),
# and nomad-init changes the default at the commit (docs/nomados-updates.md). Slot b starts empty.
write_boot_files() {
  # nomad.role=host: nomad-init serves two roles; say which one rather than rely on its detection.
  local cmdline="console=tty0 console=$console,115200n8 panic=10 nomad.role=host $extra_cmdline"
  [ "$console" = tty0 ] && cmdline="console=ttyS0,115200n8 console=tty0 panic=10 nomad.role=host $extra_cmdline"
  cmdline=${cmdline% }
  mkdir -p "$esp/a" "$esp/b"
  cp "$kernel_image" "$esp/a/vmlinuz"
  mkdir -p "$esp/syslinux" "$esp/EFI/BOOT" "$esp/loader/entries"
  cp /usr/lib/syslinux/modules/bios/ldlinux.c32 "$esp/syslinux/"
  local slot entry args
  printf 'DEFAULT a\nPROMPT 0\nTIMEOUT 0\n' > "$esp/syslinux/syslinux.cfg"
  for entry in a a-trial b b-trial; do
    slot=${entry%-trial}
    args="$cmdline nomados.slot=$slot"
    [ "$entry" = "$slot" ] || args+=" nomados.trial=1"
    printf 'LABEL %s\n  LINUX /%s/vmlinuz\n  INITRD /%s/initrd.img\n  APPEND %s\n' \
      "$entry" "$slot" "$slot" "$args" >> "$esp/syslinux/syslinux.cfg"
    printf 'title NomadOS %s\nlinux /%s/vmlinuz\ninitrd /%s/initrd.img\noptions %s\n' \
      "$entry" "$slot" "$slot" "$args" > "$esp/loader/entries/$entry.conf"
  done
  cp /usr/lib/systemd/boot/efi/systemd-bootx64.efi "$esp/EFI/BOOT/BOOTX64.EFI"
  printf 'default a.conf\ntimeout 0\neditor no\n' > "$esp/loader/loader.conf"
  boot_cmdline="$cmdline nomados.slot=a"
  [ "$secure_boot" = 0 ] || write_secure_boot_files "$cmdline"
}

# The security directory entry of a PE image (PE32+: optional header at e_lfanew+24, data directory 4 at +144)
# is non-zero only when an Authenticode signature is attached. Whose signature is shim's business at boot.
pe_signed() {
  local pe size
  pe=$(od -An -tu4 -j60 -N4 "$1" | tr -d ' ')
  size=$(od -An -tu4 -j$((pe + 24 + 144 + 4)) -N4 "$1" | tr -d ' ')
  [ "${size:-0}" -gt 0 ]
}

# Secure Boot chain: firmware (Microsoft UEFI CA) -> shim (BOOTX64.EFI) -> GRUB (grubx64.efi beside it, signed
# with Debian's key that shim embeds) -> kernel (Debian's key, checked by GRUB through shim). Debian's signed
# GRUB is built with the prefix /EFI/debian, so its config lives there.
write_secure_boot_files() {
  local cmdline=$1 entry slot args
  pe_signed "$kernel_image" || die "--secure-boot: kernel $kernel_package has no signature (use a Debian \
linux-image-*-amd64 package, built from linux-signed-amd64)"
  local d="$work/secure-boot" deb pkg
  for pkg in shim-signed grub-efi-amd64-signed; do
    deb=$(fetch_deb "$pkg" --secure-boot)
    dpkg-deb -x "$deb" "$d"
    secure_boot_packages+="$(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version) "
  done
  cp "$d/usr/lib/shim/shimx64.efi.signed" "$esp/EFI/BOOT/BOOTX64.EFI"
  cp "$d/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed" "$esp/EFI/BOOT/grubx64.efi"
  rm -rf "$esp/loader"
  mkdir -p "$esp/EFI/debian"
  # Entries by id, so nomad-init's "set default=<entry>" picks one whatever the order. An update's trial is
  # grubenv's next_entry, booted once: cleared (save_env rewrites grubenv in place) before its kernel loads.
  printf 'set timeout=0\nset default=a\n' > "$esp/EFI/debian/grub.cfg"
  cat >> "$esp/EFI/debian/grub.cfg" <<'EOF'
load_env --file ${prefix}/grubenv next_entry
if [ -n "${next_entry}" ]; then
  set default="${next_entry}"
  set next_entry=
  save_env --file ${prefix}/grubenv next_entry
fi
EOF
  # An empty environment block (1024 bytes, the format grub-editenv writes), for save_env to rewrite in place.
  { printf '# GRUB Environment Block\n'; head -c $((1024 - 25)) /dev/zero | tr '\0' '#'; } > "$esp/EFI/debian/grubenv"
  for entry in a a-trial b b-trial; do
    slot=${entry%-trial}
    args="$cmdline nomados.slot=$slot"
    [ "$entry" = "$slot" ] || args+=" nomados.trial=1"
    printf 'menuentry "NomadOS %s" --id %s {\n  linux /%s/vmlinuz %s\n  initrd /%s/initrd.img\n}\n' \
      "$entry" "$entry" "$slot" "$args" "$slot" >> "$esp/EFI/debian/grub.cfg"
  done
}

# A stable UUID from the inputs: the same inputs give the same image, different inputs different ids.
uuid_from() {
  local h; h=$(printf '%s' "$inputs_digest-$1" | sha256sum | cut -c1-32)
  echo "${h:0:8}-${h:8:4}-4${h:13:3}-a${h:17:3}-${h:20:12}"
}

bytes_of() { du -sb "$1" | cut -f1; }

assemble() {
  local gi="$work/genimage"
  mkdir -p "$gi"/{input,tmp,root}
  local esp_bytes sys_bytes esp_size sys_size
  esp_bytes=$(bytes_of "$esp")
  sys_bytes=$(bytes_of "$rootfs")
  # FAT: content + 25 % + 8 MiB slack, at least 64 MiB. ext4 (4 KiB blocks, read-only, so no room to grow):
  # content plus up to a block lost per file, + 3 % (inode tables are 1.6 % at mke2fs's 16 KiB per inode) + 4 MiB.
  esp_size=$(( esp_bytes * 5 / 4 / 1048576 + 8 ))
  [ "$esp_size" -ge 64 ] || esp_size=64
  local sys_files; sys_files=$(find "$rootfs" | wc -l)
  sys_size=$(( (sys_bytes + sys_files * 4096) * 103 / 100 / 1048576 + 5 ))
  # A slot holds this build's system with room for later, larger builds (updates are written into the other
  # slot, which must fit them): --slot-size, default 1.5 x this system, at least 64 MiB.
  slot_size=$(( sys_size * 3 / 2 ))
  [ "$slot_size" -ge 64 ] || slot_size=64
  if [ "$slot_size_opt" != auto ]; then
    slot_size=$(( $(numfmt --from=iec "$slot_size_opt") / 1048576 ))
    [ "$slot_size" -ge "$sys_size" ] || die "--slot-size $slot_size_opt: the system needs ${sys_size}M"
  fi
  local boot_offset_sectors=2048  # 1 MiB: the boot partition's start; syslinux's VBR is told via hidden sectors
  cp /usr/lib/SYSLINUX/gptmbr.bin "$gi/input/"
  # syslinux writes its boot sector and ldlinux.sys into the FAT image file itself (mtools; no mount, no root).
  # A script, because genimage expands ${...} in its config at parse time; it exports IMAGEOUTFILE when running it.
  # shellcheck disable=SC2016 # $IMAGEOUTFILE is for the generated script to expand
  printf '#!/bin/sh\nexec syslinux --install --directory /syslinux "$IMAGEOUTFILE"\n' > "$gi/install-syslinux"
  chmod +x "$gi/install-syslinux"
  # mke2fs -d (e2fsprogs 1.47.0) copies each inode's ctime, and directories' atimes, from the staging tree: the
  # times of this build, not of the inputs. Reset them in the finished image so equal inputs give equal bytes.
  (cd "$rootfs" && find . | sed 's|^\.||; s|^$|/|' | LC_ALL=C sort) | {
    while IFS= read -r p; do printf 'sif "%s" ctime @%s\nsif "%s" atime @%s\n' "$p" "$epoch" "$p" "$epoch"; done
    printf 'sif "/lost+found" ctime @%s\nsif "/lost+found" atime @%s\n' "$epoch" "$epoch"
  } > "$gi/ext4-times.cmds"
  # shellcheck disable=SC2016 # as above
  printf '#!/bin/sh\nE2FSPROGS_FAKE_TIME=%s exec debugfs -w -f "%s" "$IMAGEOUTFILE" >/dev/null\n' \
    "$epoch" "$gi/ext4-times.cmds" > "$gi/fix-ext4-times"
  chmod +x "$gi/fix-ext4-times"
  cat > "$gi/genimage.cfg" <<EOF
image boot.vfat {
  temporary = true
  srcpath = "$esp"
  vfat {
    label = "NOMADOS"
    extraargs = "-i $(uuid_from fat | cut -c1-8) -h $boot_offset_sectors --invariant"
  }
  size = ${esp_size}M
  exec-post = "$gi/install-syslinux"
}
image system.ext4 {
  temporary = true
  srcpath = "$rootfs"
  ext4 {
    use-mke2fs = true
    label = "nomados-system"
    features = "^has_journal"
    extraargs = "-U $(uuid_from system) -E hash_seed=$(uuid_from system-hash),root_owner=0:0 -m 0 -T default"
    fs-timestamp = "$(date -u -d "@$epoch" +%Y%m%d%H%M.%S)"
  }
  size = ${sys_size}M
  exec-post = "$gi/fix-ext4-times"
}
image data.ext4 {
  temporary = true
  empty = true
  ext4 {
    use-mke2fs = true
    label = "nomados-data"
    extraargs = "-U $(uuid_from data) -E hash_seed=$(uuid_from data-hash),lazy_itable_init=1,lazy_journal_init=1 -T default"
    fs-timestamp = "$(date -u -d "@$epoch" +%Y%m%d%H%M.%S)"
  }
  size = $data_size
}
image $name.raw {
  hdimage {
    partition-table-type = "gpt"
    disk-uuid = "$(uuid_from disk)"
  }
  partition mbr {
    in-partition-table = false
    offset = 0
    image = "gptmbr.bin"
  }
  partition nomados-boot {
    offset = $(( boot_offset_sectors * 512 ))
    image = "boot.vfat"
    partition-type-uuid = "U"
    partition-uuid = "$(uuid_from part-boot)"
    bootable = true
  }
  partition nomados-system-a {
    image = "system.ext4"
    size = ${slot_size}M
    partition-type-uuid = "L"
    partition-uuid = "$(uuid_from part-system-a)"
  }
  partition nomados-system-b {
    size = ${slot_size}M
    partition-type-uuid = "L"
    partition-uuid = "$(uuid_from part-system-b)"
  }
  partition nomados-data {
    image = "data.ext4"
    partition-type-uuid = "L"
    partition-uuid = "$(uuid_from part-data)"
  }
}
EOF
  (cd "$gi" && E2FSPROGS_FAKE_TIME=$epoch SOURCE_DATE_EPOCH=$epoch genimage --config genimage.cfg \
      --rootpath root --tmppath tmp --inputpath input --outputpath "$work/images" >"$work/genimage.log" 2>&1) \
    || { tail -30 "$work/genimage.log" >&2; die "genimage failed (log above; full log in $work/genimage.log with --work)"; }
  esp_size_mb=$esp_size sys_size_mb=$sys_size slot_size_mb=$slot_size
}

convert_outputs() {
  mkdir -p "$out_dir"
  local raw="$work/images/$name.raw" fmt
  for fmt in ${formats//,/ }; do
    case "$fmt" in
      raw) cp --sparse=always "$raw" "$out_dir/$name.raw" ;;
      qcow2) qemu-img convert -q -f raw -O qcow2 -c "$raw" "$out_dir/$name.qcow2" ;;
      # streamOptimized is what vSphere/ESXi OVF import and AWS VM Import accept.
      vmdk) qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized "$raw" "$out_dir/$name.vmdk" ;;
    esac
  done
}

# "size BYTES WHAT" lines: the system partition's content by part (kernel modules by directory, each program,
# libraries, CNI plugins, ...), then the boot partition's; each total's parts add up to it.
describe_sizes() {
  local r=$rootfs mods="$rootfs/usr/lib/modules/$krel" libs="$rootfs/usr/lib/x86_64-linux-gnu" f
  local xt="$libs/xtables" total listed=0 n
  sz() { du -scb "$@" 2>/dev/null | tail -1 | cut -f1; }
  line() { echo "size $1 $2"; listed=$(( listed + $1 )); }
  total=$(sz "$r")
  echo "size $total system-partition-content"
  # Kernel modules, then by directory two levels under kernel/ (drivers/net, net/netfilter, ...), biggest first.
  local dirs=() dirsum
  mapfile -t dirs < <(cd "$mods/kernel" && find . -mindepth 2 -maxdepth 2 -type d | sed 's|^\./||' | sort)
  line "$(sz "$mods")" "kernel modules (profile $profile)"
  (cd "$mods/kernel" && du -sb "${dirs[@]}") | sort -k1,1nr -k2 | while read -r n f; do echo "size $n   modules/$f"; done
  dirsum=$(cd "$mods/kernel" && sz "${dirs[@]}")
  echo "size $(( $(sz "$mods") - dirsum ))   modules/(other files: top-level modules, indexes)"
  for f in "$r"/usr/sbin/* "$r"/usr/bin/* "$r"/opt/nomad/plugins/* "$r"/opt/cni/bin/* "$r"/usr/share/nomados/guest/*; do
    if [ ! -f "$f" ] || [ -L "$f" ]; then continue; fi
    line "$(sz "$f")" "${f#"$r"}"
  done
  [ ! -d "$xt" ] || line "$(sz "$xt")" "/usr/lib/x86_64-linux-gnu/xtables (iptables extensions)"
  n=$(( $(sz "$libs") - $(sz "$xt") ))
  line "$n" "shared libraries (ldd of the programs)"
  line "$(sz "$r/etc")" "/etc (CA certificates, agent config, identity files)"
  echo "size $(( total - listed )) other (ld.so, directories, small files)"
  echo "size $(sz "$esp") boot-partition-content"
  echo "size $(sz "$esp/a/vmlinuz") /a/vmlinuz"
  echo "size $(sz "$esp/a/initrd.img") /a/initrd.img"
  echo "size $(( $(sz "$esp") - $(sz "$esp/a/vmlinuz" "$esp/a/initrd.img") )) boot loaders"
}

write_manifest() {
  local m="$out_dir/$name.manifest" f
  {
    echo "# NomadOS image $name: what is baked in"
    echo "source_date_epoch $epoch"
    echo "kernel $kernel_package $kernel_version ($krel)"
    echo "cmdline $boot_cmdline"
    [ "$secure_boot" = 0 ] || echo "secure_boot ${secure_boot_packages% }"
    echo "init $(sha256sum < "$init_bin" | cut -d' ' -f1) $(basename "$init_bin")"
    echo "nomad $(sha256sum < "$nomad_bin" | cut -d' ' -f1) $(basename "$nomad_bin")"
    for f in "${driver_bins[@]}" "${vmm_bins[@]}" "${guest_files[@]}"; do
      echo "extra $(sha256sum < "$f" | cut -d' ' -f1) $(basename "$f")"
    done
    echo "partitions boot=${esp_size_mb}M system=${sys_size_mb}M slots=2x${slot_size_mb}M data=$data_size"
    echo "system_content_bytes $(bytes_of "$rootfs")"
    echo "system_content_bytes_without_nomad $(( $(bytes_of "$rootfs") - $(stat -c %s "$rootfs/usr/bin/nomad") ))"
    echo "boot_content_bytes $(bytes_of "$esp")"
    echo "profile $profile"
    echo "# what the content is (bytes, what): du -b of the staging trees"
    describe_sizes
    echo "# host files copied from Debian packages (path package version)"
    describe_host_files
  } > "$m"
  local sums=() fmt
  for fmt in ${formats//,/ }; do sums+=("$name.$fmt"); done
  (cd "$out_dir" && sha256sum "${sums[@]}" "$name.manifest" > SHA256SUMS)
}

