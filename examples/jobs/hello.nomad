# Hello world: a batch job whose one task boots a microVM from the busybox image, prints a line and exits 0.
# With any agent in examples/agent: `nomad job run hello.nomad`, then `nomad alloc logs <alloc>` shows
#
#   Hello, world, from task greet
#
# The conformance scenario "example-job-hello" runs this task (with the harness's local copy of the image) and
# checks exactly that output and the exit code.
job "hello" {
  datacenters = ["dc1"]
  type        = "batch"

  group "hello" {
    task "greet" {
      driver = "firecracker"

      config {
        image      = "docker.io/library/busybox:1.36"
        entrypoint = ["/bin/sh", "-c"]
        args       = ["echo \"Hello, $AUDIENCE, from task $NOMAD_TASK_NAME\""]
        env        = { AUDIENCE = "world" }
      }

      resources {
        cpu    = 200
        memory = 128
      }
    }
  }
}
