# A job using Nomad's task directories and a host volume inside the microVM (docs/task-files.md,
# docs/volumes.md): a template re-rendered from a Nomad variable with change_mode = "signal", a secret template on
# /secrets, an artifact in /local, and a host volume that keeps a counter across allocations.
#
# The client needs the host volume: host_volume "web-data" in its client block (examples/agent/full.hcl).
# The conformance scenario "example-job-templates-artifact-volume" runs this very file through the plugin API,
# acting as Nomad's client (it renders the templates with stand-in variables, fetches no artifact but writes its
# stand-in, and uses the harness's local copy of the image).
job "web-config" {
  group "web" {
    volume "data" {
      type      = "host"
      source    = "web-data"
      read_only = false
    }

    task "app" {
      driver = "firecracker"

      config {
        image             = "docker.io/library/busybox:1.36"
        args              = ["sh", "-c", "trap 'echo reloaded: $(cat /local/app.conf)' HUP; cat /local/app.conf; ls /local/static; echo started >> /data/starts; echo starts: $(wc -l < /data/starts); while true; do sleep 1; done"]
        task_dir_max_size = "256MiB"
        volume_size       = "256MiB"
      }

      volume_mount {
        volume      = "data"
        destination = "/data"
      }

      artifact {
        source      = "https://example.com/assets/static.tar.gz"
        destination = "local/static"
      }

      template {
        data          = "greeting = {{ with nomadVar \"nomad/jobs/web-config\" }}{{ .greeting }}{{ end }}\n"
        destination   = "local/app.conf"
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      template {
        data        = "{{ with nomadVar \"nomad/jobs/web-config\" }}{{ .api_key }}{{ end }}"
        destination = "secrets/api_key"
        perms       = "0400"
      }

      resources {
        cpu    = 500
        memory = 256
      }
    }
  }
}
