# A client agent that sets every option of the plugin block, each to a typical value (the defaults are listed
# in docs/configuration.md). It also declares the host volumes the example jobs mount.
data_dir   = "/opt/nomad/data"
plugin_dir = "/opt/nomad/plugins"

client {
  enabled = true

  # examples/jobs/templates.nomad
  host_volume "web-data" {
    path      = "/opt/nomad/volumes/web-data"
    read_only = false
  }

  # examples/jobs/host-volume.nomad: one writable, one only ever mounted read-only.
  host_volume "notes" {
    path      = "/opt/nomad/volumes/notes"
    read_only = false
  }

  host_volume "reference" {
    path      = "/opt/nomad/volumes/reference"
    read_only = true
  }
}

plugin "nomad-driver-firecracker" {
  # Passed to the plugin process on every launch.
  args = ["--log-level=info", "--fingerprint-period=30"]

  config {
    # Which VMM runs the guests: "auto" picks Firecracker when it and /dev/kvm work, else QEMU.
    backend          = "auto"
    firecracker_path = "/usr/local/bin/firecracker"
    jailer_path      = "/usr/local/bin/jailer"
    jailer           = true
    qemu_path        = "qemu-system-x86_64"

    # The guest kernel and initramfs (the guest-artifacts build target makes both).
    kernel_path = "/usr/lib/nomad-firecracker/guest/vmlinux"
    initrd_path = "/usr/lib/nomad-firecracker/guest/initramfs.cpio.gz"

    # Images, per-task state and sockets.
    data_dir         = "/var/lib/nomad-firecracker"
    image_cache_size = "40GiB"

    # An image no task has used for image_delay is removed from the cache (as the docker driver's gc block).
    gc {
      image       = true
      image_delay = "10m"
    }

    # Bridge mode: what a guest may not send to (docs/networking.md). These are the defaults, plus one
    # address of this host that guests should not reach.
    egress_guard {
      enabled = true
      cidrs   = ["169.254.0.0/16", "192.0.2.10/32"]
      gateway = true
    }

    # Bridge mode: the namespace and the guest meet on 127.0.0.1 (Consul Connect's Envoy; docs/networking.md).
    sidecar_bridge = true

    # Host mode (Nomad's default network mode): each VM gets a private /30 link from this host, NAT out and
    # the task's ports forwarded in (docs/networking.md). Off by default: it turns on IPv4 forwarding.
    host_network {
      enabled = true
      cidr    = "10.229.0.0/16"
    }

    # Warm start (docs/warm-start.md): restore a snapshot of a VM booted once per image, size and device list
    # instead of booting (on by default). Each first start of a shape also boots a template VM in the
    # background, and a template takes about half its VM's memory size on disk in data_dir/templates.
    warm_start = true

    # Registries.
    insecure_registries   = ["registry.local:5000"]
    ca_file               = "/etc/nomad-firecracker/registry-ca.pem"
    pull_activity_timeout = "2m"

    # How long a guest may take to boot (TCG without KVM needs longer than the KVM default would).
    boot_timeout = "3m"

    # Confinement of each VMM (docs/security.md).
    sandbox       = true
    vm_uids       = "200000-265535"
    cgroup_parent = "/nomad-firecracker"
  }
}
