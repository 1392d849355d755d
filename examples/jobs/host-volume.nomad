# Host volumes in a microVM (docs/volumes.md): the client's host_volume "notes" and "reference"
# (examples/agent/full.hcl) become disks of the VM. The writable one keeps a note per run across allocations;
# the read-only one is mounted read-only in the guest. The first mount makes a sparse disk image of volume_size
# in the volume's directory.
job "notes" {
  datacenters = ["dc1"]
  type        = "batch"

  group "notes" {
    volume "notes" {
      type      = "host"
      source    = "notes"
      read_only = false
    }

    volume "reference" {
      type      = "host"
      source    = "reference"
      read_only = true
    }

    task "append" {
      driver = "firecracker"

      config {
        image       = "docker.io/library/busybox:1.36"
        entrypoint  = ["/bin/sh", "-c"]
        args        = ["echo \"run of $NOMAD_ALLOC_ID\" >> /notes/runs.txt; wc -l < /notes/runs.txt; ls /reference"]
        volume_size = "512MiB"
      }

      volume_mount {
        volume      = "notes"
        destination = "/notes"
      }

      volume_mount {
        volume      = "reference"
        destination = "/reference"
        read_only   = true
      }

      resources {
        cpu    = 200
        memory = 128
      }
    }
  }
}
