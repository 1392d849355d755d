# Sourced by nomados (src/nomados/nomados): the system partition's content (host files, libraries, the userland Nomad calls).
# shellcheck shell=bash disable=SC2154,SC2034 # globals are shared with nomados and the other lib files

# Copies a host file to the same path under $rootfs (following symlinks for content, keeping the link name).
copy_host_file() {
  local src=$1 dest=${2:-$1}
  [ -e "$src" ] || die "host file $src is missing (is its Debian package installed?)"
  mkdir -p "$rootfs$(dirname "$dest")"
  cp -L --preserve=mode "$src" "$rootfs$dest"
  host_files+=("$src")
}

# Copies the shared libraries some ELF files need (resolved on this Debian machine by one ldd call; static
# files simply list nothing).
copy_libs() {
  local lib
  while read -r lib; do
    [ -n "$lib" ] || continue
    [ -e "$rootfs$lib" ] && continue
    copy_host_file "$lib"
  done < <(ldd "$@" 2>/dev/null | awk '/=> \// {print $3} /^[ \t]*\/lib/ {print $1}' | sort -u)
}

install_bin() {  # install_bin SRC DEST: a program and its libraries
  copy_host_file "$1" "$2"
  copy_libs "$1"
}

# "path package version" for every host file copied, from two dpkg-query calls (Debian 12 is merged-/usr: a file
# may be registered under /lib/... or /usr/lib/..., so both spellings are asked).
describe_host_files() {
  local -A owner=()
  local f line pkg path
  mapfile -t files < <(printf '%s\n' "${host_files[@]}" | sort -u)
  local queries=()
  for f in "${files[@]}"; do
    queries+=("$f" "$(readlink -f "$f")")
    case "$f" in /usr/*) queries+=("${f#/usr}") ;; *) queries+=("/usr$f") ;; esac
  done
  while IFS= read -r line; do
    pkg=${line%%: *}; path=${line#*: }
    owner[$path]=${pkg%%,*}
  done < <(dpkg-query -S "${queries[@]}" 2>/dev/null || true)
  local -A version=()
  local pkgs=()
  mapfile -t pkgs < <(printf '%s\n' "${owner[@]}" | sed 's/:.*//' | sort -u)
  while read -r pkg ver; do version[$pkg]=$ver; done \
    < <(dpkg-query -W -f='${Package} ${Version}\n' "${pkgs[@]}" 2>/dev/null || true)
  for f in "${files[@]}"; do
    local real; real=$(readlink -f "$f")
    pkg=${owner[$f]:-${owner[$real]:-${owner[${f#/usr}]:-${owner[/usr$f]:-}}}}
    if [ -z "$pkg" ] && [ "$f" = /etc/ssl/certs/ca-certificates.crt ]; then
      pkg="ca-certificates"; echo "file $f generated-from ca-certificates ${version[$pkg]:-$(dpkg-query -W -f='${Version}' ca-certificates 2>/dev/null)}"; continue
    fi
    echo "file $f ${pkg:-?} ${version[${pkg%%:*}]:-}"
  done
}

build_rootfs() {
  # Debian 12 layout: /bin /sbin /lib /lib64 are links into /usr (Debian's binaries expect /lib64/ld-linux...).
  mkdir -p "$rootfs"/usr/{bin,sbin,lib,lib64} "$rootfs"/{dev,proc,sys,run,tmp,data,var,root,etc,opt/cni/bin,opt/nomad/plugins}
  ln -s usr/bin "$rootfs/bin"; ln -s usr/sbin "$rootfs/sbin"; ln -s usr/lib "$rootfs/lib"; ln -s usr/lib64 "$rootfs/lib64"
  chmod 0700 "$rootfs/root"; chmod 1777 "$rootfs/tmp"

  install -m 0755 "$init_bin" "$rootfs/usr/sbin/nomad-init"
  strip --strip-all "$rootfs/usr/sbin/nomad-init"
  ln -s nomad-init "$rootfs/usr/sbin/init"
  install -m 0755 "$nomad_bin" "$rootfs/usr/bin/nomad"

  mkdir -p "$rootfs/etc/nomad.d"
  if [ -d "$agent_config" ]; then
    cp "$agent_config"/*.hcl "$agent_config"/*.json "$rootfs/etc/nomad.d/" 2>/dev/null || true
  else
    cp "$agent_config" "$rootfs/etc/nomad.d/"
  fi

  local f
  for f in "${driver_bins[@]}"; do install -m 0755 "$f" "$rootfs/opt/nomad/plugins/"; copy_libs "$f"; done
  for f in "${vmm_bins[@]}"; do install -m 0755 "$f" "$rootfs/usr/bin/"; copy_libs "$f"; done
  copy_libs "$nomad_bin"  # Nomad releases are static Go binaries; a dynamic build gets its libraries too
  if [ ${#guest_files[@]} -gt 0 ]; then
    mkdir -p "$rootfs/usr/share/nomados/guest"
    for f in "${guest_files[@]}"; do install -m 0644 "$f" "$rootfs/usr/share/nomados/guest/"; done
  fi
  for f in "${extra_files[@]}"; do
    local src=${f%%:*} dest=${f#*:}
    mkdir -p "$rootfs$(dirname "$dest")"
    cp -a "$src" "$rootfs$dest"
  done

  # The userland Nomad itself calls (reference 6.4): df for the storage fingerprint, iptables (nft backend) for
  # bridge networking and port maps, ip, modprobe for kernel auto-loading (kernel.modprobe), CNI plugins.
  install_bin /usr/bin/df /usr/bin/df
  install_bin /usr/sbin/ip /usr/sbin/ip
  install_bin /usr/bin/kmod /usr/bin/kmod
  local l
  for l in modprobe insmod rmmod lsmod modinfo; do ln -s ../bin/kmod "$rootfs/usr/sbin/$l"; done
  install_bin /usr/sbin/xtables-nft-multi /usr/sbin/xtables-nft-multi
  for l in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    ln -s xtables-nft-multi "$rootfs/usr/sbin/$l"
  done
  local xt=/usr/lib/x86_64-linux-gnu/xtables
  mkdir -p "$rootfs$xt"
  for f in "$xt"/*.so; do copy_host_file "$f"; done
  copy_libs "$xt"/*.so
  local cni=()
  if [ "$cni_list" = all ]; then mapfile -t cni < <(ls /usr/lib/cni); else IFS=, read -r -a cni <<< "$cni_list"; fi
  for f in "${cni[@]}"; do
    [ -x "/usr/lib/cni/$f" ] || die "--cni: no plugin '$f' in /usr/lib/cni (apt-get install containernetworking-plugins)"
    copy_host_file "/usr/lib/cni/$f" "/opt/cni/bin/$f"
  done
  copy_host_file /etc/ssl/certs/ca-certificates.crt
  ln -s certs/ca-certificates.crt "$rootfs/etc/ssl/cert.pem"
  if [ "$debug_shell" = 1 ]; then
    copy_host_file /bin/busybox /usr/bin/busybox
    ln -s busybox "$rootfs/usr/bin/sh"
  fi

  # Identity and name service files; the changing ones live in /run or /var (the system partition is read-only).
  printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' > "$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$rootfs/etc/group"
  printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n' > "$rootfs/etc/nsswitch.conf"
  ln -s ../run/nomados/resolv.conf "$rootfs/etc/resolv.conf"
  ln -s ../run/nomados/hosts "$rootfs/etc/hosts"
  ln -s ../var/lib/nomados/machine-id "$rootfs/etc/machine-id"
  ln -s ../proc/self/mounts "$rootfs/etc/mtab"
  [ -f /etc/protocols ] && copy_host_file /etc/protocols
  [ -f /etc/services ] && copy_host_file /etc/services
  cat > "$rootfs/etc/os-release" <<EOF
NAME="NomadOS"
ID=nomados
ID_LIKE=debian
PRETTY_NAME="NomadOS (Debian 12 kernel $krel)"
VERSION_ID="$epoch"
HOME_URL="https://github.com/"
EOF
  cp "$rootfs/etc/os-release" "$rootfs/etc/nomados-release"
  mkdir -p "$rootfs/usr/lib/nomados"
  echo "$epoch" > "$rootfs/usr/lib/nomados/build-epoch"

  # Kernel modules for the installed system: what the profile (--profile, kernel.sh) keeps.
  local src="$work/kernel/lib/modules/$krel" rels=()
  mapfile -t rels < <(profile_modules "$src" "$profile")
  [ ${#rels[@]} -gt 0 ] || die "--profile $profile: no kernel module selected from $kernel_package"
  copy_modules "$rootfs" "${rels[@]}"
}

