# A job written for the seed project (nomad-litegix-fc-driver): its driver name and its option spellings, which
# this driver accepts as they are when installed as litegix-fc-driver (examples/agent/litegix.hcl). vpu_count is
# vcpu_count, args is one shell-quoted string (split into words, never expanded), env is a list of NAME=value.
job "litegix" {
  datacenters = ["dc1"]
  type        = "batch"

  group "vm" {
    task "ubuntu" {
      driver = "litegix-fc-driver"

      config {
        image     = "ubuntu:20.04"
        vpu_count = 1
        mem_size  = 512
        command   = "/bin/bash"
        args      = "-c 'echo Hello from Firecracker VM && sleep 30'"
        env       = ["ENV_VAR=value", "ANOTHER_VAR=value2"]
      }

      resources {
        cpu    = 100
        memory = 256
      }
    }
  }
}
