# The smallest client agent that runs microVM tasks: the plugin binary copied into plugin_dir and a plugin block
# named after the file. Without a config block every option takes its default (docs/configuration.md): the
# guest kernel and initramfs under /usr/lib/nomad-firecracker/guest, the data under /var/lib/nomad-firecracker,
# and Firecracker when it and /dev/kvm are usable, QEMU otherwise.
data_dir   = "/opt/nomad/data"
plugin_dir = "/opt/nomad/plugins"

client {
  enabled = true
}

plugin "nomad-driver-firecracker" {}
