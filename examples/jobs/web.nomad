# A web service in bridge networking: the microVM takes over the allocation's address in Nomad's network
# namespace, so the mapped port reaches busybox's httpd inside the guest, and Nomad's own service discovery
# checks it over HTTP every 10 seconds. ${NOMAD_PORT_http} is filled in by the Nomad client before the driver
# sees the config (in bridge mode it is the "to" port, 8080).
job "web" {
  datacenters = ["dc1"]
  type        = "service"

  group "web" {
    count = 2

    network {
      mode = "bridge"

      port "http" {
        to = 8080
      }
    }

    service {
      name     = "web"
      provider = "nomad"
      port     = "http"

      check {
        name     = "web-root"
        type     = "http"
        path     = "/"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "server" {
      driver = "firecracker"

      config {
        image    = "docker.io/library/busybox:1.36"
        args     = ["httpd", "-f", "-v", "-p", "${NOMAD_PORT_http}", "-h", "/local/www"]
        hostname = "web-${NOMAD_ALLOC_INDEX}"
        labels   = { tier = "frontend" }
      }

      # Rendered by the client into the task directory, which the guest sees as /local.
      template {
        data        = "<h1>Served from allocation {{ env \"NOMAD_ALLOC_ID\" }}</h1>\n"
        destination = "local/www/index.html"
      }

      resources {
        cpu    = 200
        memory = 128
      }
    }
  }
}
