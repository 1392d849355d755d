# A Nomad client configuration as an operator would bake it into a NomadOS image. The boot tests run a TEST
# DOUBLE in place of Nomad (tests/nomados/test_agent.cc) that only checks it was started with this directory.
data_dir   = "/var/lib/nomad"
bind_addr  = "0.0.0.0"
plugin_dir = "/opt/nomad/plugins"

leave_on_terminate = true

client {
  enabled  = true
  servers  = ["10.0.2.2:4647"]
  cni_path = "/opt/cni/bin"
}
