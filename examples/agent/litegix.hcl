# The agent configuration of a node that ran the seed project (nomad-litegix-fc-driver), kept as it was: install
# this driver's binary in plugin_dir under the name litegix-fc-driver and the plugin block and the jobs
# (examples/jobs/litegix.nomad) work unchanged. vmlinux_path and rootfs_base_path are aliases of kernel_path and
# data_dir; containerd_socket is accepted and ignored (the plugin logs a warning), since this driver pulls images
# itself.
data_dir   = "/opt/nomad/data"
plugin_dir = "/opt/nomad/plugins"

client {
  enabled = true
}

plugin "litegix-fc-driver" {
  config {
    vmlinux_path      = "/opt/litegix/vmlinux"
    rootfs_base_path  = "/var/lib/litegix-rootfs"
    containerd_socket = "/run/containerd/containerd.sock"
  }
}
