# Sourced by nomados (src/nomados/nomados): the kernel package, its modules, the initramfs.
# shellcheck shell=bash disable=SC2154,SC2034 # globals are shared with nomados and the other lib files

cache_dir() {
  if [ -n "${NOMADOS_CACHE:-}" ]; then echo "$NOMADOS_CACHE"
  elif [ "$(id -u)" -eq 0 ]; then echo /var/cache/nomados
  else echo "${XDG_CACHE_HOME:-$HOME/.cache}/nomados"; fi
}

fetch_kernel() {
  if [ -n "$kernel_deb" ]; then echo "$kernel_deb"; return; fi
  fetch_deb "$kernel_pkg" --kernel-package
}

# fetch_deb PACKAGE OPTION: a meta package (linux-image-amd64) resolves to the image package it depends on;
# the .deb is downloaded once into the cache.
fetch_deb() {
  local pkg=$1 dep
  dep=$(apt-cache depends "$pkg" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  [ -z "$dep" ] || pkg=$dep
  local version
  version=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2; exit}')
  if [ -z "$version" ] || [ "$version" = "(none)" ]; then
    die "$2 '$1': no installable candidate in apt (run apt-get update?)"
  fi
  local dir; dir="$(cache_dir)/$pkg/$version"
  mkdir -p "$dir"
  local debs=("$dir"/*.deb) deb=""
  [ -e "${debs[0]}" ] && deb=${debs[0]}
  if [ -z "$deb" ]; then
    note "downloading $pkg=$version"
    local tmp; tmp=$(mktemp -d "$dir/.dl.XXXXXX")
    (cd "$tmp" && apt-get download -q "$pkg=$version" >&2) || { rm -rf "$tmp"; die "apt-get download $pkg=$version failed"; }
    mv "$tmp"/*.deb "$dir/" && rmdir "$tmp"
    debs=("$dir"/*.deb)
    deb=${debs[0]}
  fi
  echo "$deb"
}

unpack_kernel() {
  local deb=$1
  dpkg-deb -x "$deb" "$work/kernel"
  local images=("$work"/kernel/boot/vmlinuz-*) bz
  bz=${images[0]}
  [ -e "$bz" ] || die "kernel package $deb has no /boot/vmlinuz-*"
  krel=${bz##*/vmlinuz-}
  kernel_image=$bz
  kernel_version=$(dpkg-deb -f "$deb" Version)
  kernel_package=$(dpkg-deb -f "$deb" Package)
  # Debian ships no modules.dep; everything below needs it.
  depmod -b "$work/kernel" "$krel"
}

# Module closure: the named modules plus everything they depend on, as paths relative to the modules dir.
module_closure() {
  local mods=$1; shift
  local m
  for m in "$@"; do
    awk -v m="$m" -F: '{ n=$1; sub(/.*\//, "", n); sub(/\.ko.*$/, "", n); gsub(/-/, "_", n);
        if (n == m) { print $1; k=split($2, d, " "); for (i=1;i<=k;i++) print d[i] } }' "$mods/modules.dep"
  done | sort -u
}

copy_modules() {  # copy_modules DEST_ROOT PATH...: copies module files and runs depmod
  local dest=$1; shift
  local src="$work/kernel/lib/modules/$krel"
  mkdir -p "$dest/lib/modules/$krel"
  # One cpio pass-through instead of thousands of cp/mkdir forks.
  (cd "$src" && printf '%s\n' "$@" | cpio -pdm --quiet "$dest/lib/modules/$krel")
  cp "$src"/modules.builtin "$src"/modules.builtin.modinfo "$src"/modules.order "$dest/lib/modules/$krel/" 2>/dev/null || true
  depmod -b "$dest" "$krel"
}

build_initramfs() {
  local ir="$work/initramfs"
  mkdir -p "$ir"/{dev,proc,sys,sysroot,etc,usr/lib}
  ln -s usr/lib "$ir/lib"
  install -m 0755 "$init_bin" "$ir/init"
  strip --strip-all "$ir/init"
  cp "$rootfs/etc/nomados-release" "$ir/etc/nomados-release"
  # What a boot disk can sit behind on PCs, VMs and clouds: virtio (KVM, GCE), AHCI/IDE, NVMe (EC2 Nitro),
  # SCSI HBAs (VMware pvscsi + LSI, Hyper-V storvsc, virtio-scsi), Xen blkfront (older EC2).
  local storage=(virtio_pci virtio_mmio virtio_blk virtio_scsi sd_mod ahci ata_piix ata_generic nvme
                 vmw_pvscsi mptspi hv_storvsc hv_vmbus xen_blkfront)
  local rels=()
  mapfile -t rels < <(module_closure "$work/kernel/lib/modules/$krel" "${storage[@]}")
  copy_modules "$ir" "${rels[@]}"
  (cd "$ir" && find . -exec touch -h -d "@$epoch" {} + && find . -mindepth 1 | sort \
     | cpio --quiet -o -H newc --reproducible -R 0:0) | gzip -9n > "$esp/a/initrd.img"
}


# ---------- profiles: which kernel modules the system partition gets ----------
#
# full    every module except classes a headless Nomad host does not drive (sound, GPU, media, wireless, ...)
# cloud   drivers for the devices of the clouds NomadOS targets, chosen by modalias (modules.alias, the kernel's
#         own device -> driver table): virtio (KVM/QEMU, GCE, OpenStack), NVMe (EC2 Nitro, GCE, Azure), ENA
#         (EC2), gVNIC (GCE), Hyper-V/Azure (VMBus); plus what a Nomad host loads itself (host_function_modules)
# virtio  virtio devices only (KVM/QEMU), plus what a Nomad host loads itself
profiles="full cloud virtio"

# Modalias prefixes whose drivers a profile keeps; "~TEXT" matches TEXT anywhere (a PCI class).
profile_aliases() {
  local common=('virtio:' 'pci:v00001AF4'                                  # virtio (PCI vendor Red Hat/Qumranet)
                'acpi*:LNXPWRBN' 'acpi*:PNP0C0C' 'acpi*:PNP0C0D' 'acpi*:PNP0C0E'  # ACPI buttons (power off)
                'scsi:t-0x00' 'scsi:t-0x05')                               # SCSI disks, CD-ROMs (config drives)
  case "$1" in
    virtio) printf '%s\n' "${common[@]}" ;;
    cloud) printf '%s\n' "${common[@]}" \
             '~bc01sc08i02' \
             'pci:v00001D0F' \
             'pci:v00001AE0' \
             'vmbus:' 'acpi*:VMBUS' 'acpi*:VMBus' ;;  # NVMe class, Amazon (ENA), Google (gVNIC), Hyper-V
  esac
}
# Matched but not wanted: EFA (EC2's RDMA adapter) would pull in the InfiniBand stack, vhost_scsi the SCSI
# target framework (1 MB); VMMs use vhost_net and vhost_vsock.
profile_excluded=$'efa\nvhost_scsi'

# What a Nomad client running containers and microVMs loads itself (nomad-init's list, iptables-nft's and CNI's
# on-demand modprobe, KVM/vhost/VFIO for VMMs, filesystems for overlays and config drives). Directories under
# the modules dir (IPVS left out: a kube-proxy load balancer, nothing Nomad or CNI's plugins use), then module
# names.
host_function_dirs=(kernel/net/netfilter kernel/net/ipv4/netfilter kernel/net/ipv6/netfilter kernel/net/bridge
                    kernel/net/sched kernel/net/8021q kernel/net/vmw_vsock kernel/drivers/vhost kernel/drivers/vfio
                    kernel/arch/x86/kvm kernel/fs/overlayfs kernel/fs/fuse kernel/fs/fat kernel/fs/isofs)
host_function_modules=(veth tun macvlan ipvlan vxlan dummy loop evdev nls_cp437 nls_ascii nls_utf8 nls_iso8859_1)

# profile_modules MODULES_DIR PROFILE: the module files (relative to MODULES_DIR, dependencies included) the
# profile keeps, sorted.
profile_modules() {
  local mods=$1 profile=$2
  if [ "$profile" = full ]; then
    (cd "$mods" && find kernel -name '*.ko*' \
      | grep -Ev '^kernel/(sound|drivers/(gpu|media|staging|infiniband|iio|bluetooth|isdn|video|comedi|nfc|w1|hid|input/(joystick|tablet|touchscreen|misc))|net/(wireless|bluetooth|mac80211)|drivers/net/wireless)/' \
      | sort)
    return
  fi
  local aliases=() dirs=() d names="$work/profile-$profile.names"
  mapfile -t aliases < <(profile_aliases "$profile")
  for d in "${host_function_dirs[@]}"; do
    if [ -d "$mods/$d" ]; then dirs+=("$d"); fi
  done
  {
    awk -v list="${aliases[*]}" 'BEGIN { n = split(list, p, " ") }
      $1 == "alias" { for (i = 1; i <= n; i++) {
        hit = substr(p[i], 1, 1) == "~" ? index($2, substr(p[i], 2)) > 0 : index($2, p[i]) == 1
        if (hit) { print $3; break } } }' "$mods/modules.alias"
    (cd "$mods" && find "${dirs[@]}" -name '*.ko*' -not -path '*/ipvs/*') | sed 's|.*/||; s|\.ko.*||; s|-|_|g'
    printf '%s\n' "${host_function_modules[@]}"
  } | grep -vxF "$profile_excluded" | sort -u > "$names"
  # modules.dep lists every (transitive) dependency of a module on its line.
  awk 'NR == FNR { want[$1] = 1; next }
       { f = $1; sub(/:$/, "", f); n = f; sub(/.*\//, "", n); sub(/\.ko.*$/, "", n); gsub(/-/, "_", n)
         if (n in want) { print f; for (i = 2; i <= NF; i++) print $i } }' "$names" "$mods/modules.dep" | sort -u
}
