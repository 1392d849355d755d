# A job using Nomad's task directories inside the microVM (docs/task-files.md): a template re-rendered from a
# Nomad variable with change_mode = "signal", a secret template on /secrets, an artifact in /local, and a file
# handed to the other tasks of the group through /alloc/data. The conformance scenario
# "task-dirs-templates-secrets-alloc" drives the same behaviours through the plugin API.
job "web-config" {
  group "web" {
    task "app" {
      driver = "firecracker"

      config {
        image = "docker.io/library/busybox:1.36"
        args  = ["sh", "-c", "trap 'echo reloaded: $(cat /local/app.conf)' HUP; cat /local/app.conf; cat /alloc/data/peer.txt 2>/dev/null; while true; do sleep 1; done"]
        task_dir_max_size = "256MiB"
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
