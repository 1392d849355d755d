#!/usr/bin/python3
"""Metadata service stand-in for the NomadOS boot test (cloud_config_test.cc), EC2 IMDSv2 style.

serve: an HTTP server on 127.0.0.1 (a free port, written to --port-file) answering
  PUT /latest/api/token            (needs X-aws-ec2-metadata-token-ttl-seconds) -> a fresh token
  GET /latest/meta-data/instance-id, /latest/meta-data/hostname, /latest/user-data
                                   (need X-aws-ec2-metadata-token: that token, else 401)
  anything else                    -> 404
Every request line is appended to --log with "token=ok|missing|bad".

relay PORT: copies stdin/stdout to 127.0.0.1:PORT. QEMU's user networking runs it once per guest connection
(guestfwd=tcp:169.254.169.254:80-cmd:...), which is how the guest reaches the server above.
"""
import argparse
import http.server
import os
import secrets
import socket
import sys
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection, like nomad-init asks for
    tokens = set()
    files = {}
    log_path = ""

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass

    def record(self, token_state):
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(f"{self.command} {self.path} token={token_state}\n")

    def reply(self, status, body=b""):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self):
        if self.path != "/latest/api/token":
            self.record("-")
            return self.reply(404)
        if not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            self.record("no-ttl")
            return self.reply(400)
        token = secrets.token_urlsafe(32)
        Handler.tokens.add(token)
        self.record("issued")
        return self.reply(200, token.encode())

    def do_GET(self):
        token = self.headers.get("X-aws-ec2-metadata-token")
        state = "missing" if token is None else ("ok" if token in Handler.tokens else "bad")
        self.record(state)
        if state != "ok":
            return self.reply(401)
        body = Handler.files.get(self.path)
        return self.reply(404) if body is None else self.reply(200, body)


def serve(args):
    Handler.log_path = args.log
    with open(args.user_data, "rb") as f:
        Handler.files["/latest/user-data"] = f.read()
    Handler.files["/latest/meta-data/instance-id"] = args.instance_id.encode()
    Handler.files["/latest/meta-data/hostname"] = args.hostname.encode()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    server.serve_forever()


def relay(port):
    upstream = socket.create_connection(("127.0.0.1", port), timeout=30)

    def up():
        while data := os.read(0, 65536):
            upstream.sendall(data)
        upstream.shutdown(socket.SHUT_WR)

    threading.Thread(target=up, daemon=True).start()
    while data := upstream.recv(65536):
        os.write(1, data)
    # stdin, stdout and stderr are one socket to QEMU: only exiting closes it, which the guest sees as EOF.
    os._exit(0)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--port-file", required=True)
    s.add_argument("--log", required=True)
    s.add_argument("--user-data", required=True)
    s.add_argument("--hostname", required=True)
    s.add_argument("--instance-id", required=True)
    r = sub.add_parser("relay")
    r.add_argument("port", type=int)
    args = p.parse_args()
    if args.mode == "serve":
        serve(args)
    else:
        relay(args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
