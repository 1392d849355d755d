#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets other than layer_tar (make_layer_tar_seeds.py) into
tests/fuzz/corpus/<target>/seed-*: well-formed inputs of each format, so fuzzing starts from the shapes real
peers send. Crash inputs found by fuzzing are kept beside them as crash-* and are never rewritten here.
msgpack and protobuf are encoded by hand below (neither Python module is a Debian package we install).
Usage: python3 tests/fuzz/make_seeds.py TASK_SPEC_JSON...   (task specs from TaskSpecToJson, any number)
"""
import json
import os
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# --- msgpack, the subset cty uses: maps, arrays, strings, ints, floats, bools, nil
def mp(v):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        return (bytes([0xA0 | len(b)]) if len(b) < 32 else b"\xd9" + bytes([len(b)])) + b
    if isinstance(v, list):
        return bytes([0x90 | len(v)]) + b"".join(mp(x) for x in v)
    if isinstance(v, dict):
        return bytes([0x80 | len(v)]) + b"".join(mp(k) + mp(x) for k, x in v.items())
    raise TypeError(v)


def cty_seeds():
    write("cty_msgpack", "minimal", mp({"image": "docker.io/library/alpine:3.19"}))
    write("cty_msgpack", "full", mp({
        "image": "localhost:5000/app@sha256:" + "a" * 64, "command": "/bin/sh", "args": ["-c", "echo hi"],
        "entrypoint": ["/entry"], "work_dir": "/srv", "user": "1000:1000", "vcpu_count": 2, "mem_size": 256,
        "force_pull": True, "image_pull_timeout": "5m", "backend": "qemu", "boot_args": "quiet",
        "task_dir_max_size": "64MiB", "env": {"A": "1"},
        "auth": {"username": "u", "password": "p", "server_address": "localhost:5000"}}))
    write("cty_msgpack", "nulls-and-floats", mp({"image": "a", "args": None, "vcpu_count": 1.5, "mem_size": None}))
    write("cty_msgpack", "unknown-ext", b"\x81" + mp("image") + b"\xd4\x00\x00")  # cty's unknown value


# --- protobuf wire format, for GuestMessage
def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def field(num, value):
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    return varint(num << 3 | 2) + varint(len(value)) + value


def guest_frames_seeds():
    sep = b"\n=FRAME=\n"
    chunk = lambda stream, off, data: field(3, field(1, stream) + field(2, off) + field(3, data))
    write("guest_frames", "logs", sep.join([chunk(1, 0, b"hello\n"), chunk(2, 0, b"err\n"), chunk(1, 6, b"more\n")]))
    write("guest_frames", "resend-overlap", sep.join([chunk(1, 0, b"abc"), chunk(1, 0, b"abcdef"), chunk(1, 9, b"x")]))
    write("guest_frames", "exit", field(5, field(1, 3) + field(2, 0)))
    write("guest_frames", "raw-garbage", b"RAW:NFG1\x00\x00\x00\x05" + sep + chunk(1, 0, b"after"))
    write("guest_frames", "files", field(11, field(1, b"alloc")))


def with_length(head, body):
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def crash_inputs():
    """Inputs that crashed a target before its fix (each fix has a unit test naming it). Kept as crash-*."""
    def crash(target, name, data):
        d = os.path.join(ROOT, target)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "crash-" + name), "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
    crash("docker_config", "auth-all-padding", json.dumps({"auths": {"ghcr.io": {"auth": "===="}}}))
    crash("task_spec", "number-past-double", '{"version": 1e400}')
    chunk = field(3, field(1, 1) + field(2, 0) + field(3, b"abc"))
    wrap = field(3, field(1, 1) + field(2, (1 << 64) - 2) + field(3, b"wrap"))
    crash("guest_frames", "log-offset-wraps", b"\n=FRAME=\n".join([chunk, wrap, chunk]))
    greeting = b'{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}}}\r\n'
    crash("qmp", "error-not-an-object", greeting + b'{"error": "boom", "id": 1}\r\n')
    crash("qmp", "greeting-version-strings", b'{"QMP": {"version": {"qemu": {"major": "7"}}}}\r\n[1]\r\n')
    crash("firecracker_http", "version-not-a-string",
          b"\x07" + with_length(b"HTTP/1.1 200 OK\r\n", b'{"vmm_version": 17}'))


def main():
    crash_inputs()
    cty_seeds()
    guest_frames_seeds()
    oci_index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "1" * 64, "size": 500,
         "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "2" * 64, "size": 500,
         "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}]}
    oci_manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                               "digest": "sha256:" + "3" * 64, "size": 1000},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                "digest": "sha256:" + "4" * 64, "size": 3000000},
                               {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
                                "digest": "sha256:" + "5" * 64, "size": 10}]}
    docker_manifest = dict(oci_manifest, mediaType="application/vnd.docker.distribution.manifest.v2+json")
    docker_manifest["layers"] = [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                                  "digest": "sha256:" + "6" * 64, "size": 7}]
    write("manifest", "oci-index", "application/vnd.oci.image.index.v1+json\n" + json.dumps(oci_index))
    write("manifest", "oci-manifest", "application/vnd.oci.image.manifest.v1+json\n" + json.dumps(oci_manifest))
    write("manifest", "docker-manifest",
          "application/vnd.docker.distribution.manifest.v2+json\n" + json.dumps(docker_manifest))
    write("manifest", "docker-list", "application/vnd.docker.distribution.manifest.list.v2+json\n" +
          json.dumps(dict(oci_index, mediaType="application/vnd.docker.distribution.manifest.list.v2+json")))
    write("manifest", "no-content-type", "\n" + json.dumps(oci_manifest))
    config = {"architecture": "amd64", "os": "linux", "config": {
        "Env": ["PATH=/usr/bin:/bin"], "Entrypoint": ["/entry"], "Cmd": ["serve"], "WorkingDir": "/srv",
        "User": "app", "ExposedPorts": {"80/tcp": {}}, "Labels": {"a": "b"}, "StopSignal": "SIGQUIT"},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "7" * 64]}}
    write("image_config", "full", json.dumps(config))
    write("image_config", "minimal", json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": []}}))
    for i, ref in enumerate(["alpine", "library/alpine:3.19", "docker.io/library/alpine:latest",
                             "localhost:5000/a/b/c:v1", "ghcr.io/o/r@sha256:" + "a" * 64,
                             "[::1]:5000/x:tag@sha256:" + "b" * 64, "registry.example.com:443/ns/img"]):
        write("reference", str(i), ref)
    write("docker_config", "auths", json.dumps({"auths": {"ghcr.io": {"auth": "dXNlcjpwYXNz"},
                                                          "https://index.docker.io/v1/": {"identitytoken": "t"}}}))
    write("docker_config", "helpers", json.dumps({"credHelpers": {"ghcr.io": "pass"}, "credsStore": "secretservice"}))
    write("docker_config", "user-password", json.dumps({"auths": {"localhost:5000": {"username": "u",
                                                                                      "password": "p"}}}))
    http = [
        b"HTTP/1.1 204 No Content\r\nServer: Firecracker API\r\nConnection: keep-alive\r\n\r\n",
        with_length(b"HTTP/1.1 200 \r\nContent-Type: application/json\r\n",
                    b'{"id":"x","state":"Running","vmm_version":"1.7.0","app_name":"Firecracker"}'),
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 38\r\n\r\n{\"fault_message\":\"The kernel is bad.\"}",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"firecracker_version\":\"1.16.1\"}",
    ]
    for i, r in enumerate(http):
        write("firecracker_http", str(i), bytes([7 + i]) + r)
    greeting = b'{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}\r\n'
    write("qmp", "negotiate", greeting + b'{"return": {}, "id": 1}\r\n{"return": {"status": "running", "running": true}, "id": 2}\r\n')
    write("qmp", "events", greeting + b'{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}, '
          b'"timestamp": {"seconds": 1, "microseconds": 2}}\r\n{"return": {}, "id": 1}\r\n')
    write("qmp", "error", greeting + b'{"error": {"class": "CommandNotFound", "desc": "no"}, "id": 1}\r\n')
    # DHCP OFFER: BOOTP header, magic cookie, options 53 54 51 1 3 6 121, end.
    bootp = bytes([2, 1, 6, 0]) + struct.pack(">I", 0x1234) + b"\x00" * 8 + bytes([10, 0, 0, 5]) + \
        bytes([10, 0, 0, 1]) + b"\x00" * 4 + b"\x52\x54\x00\x12\x34\x56" + b"\x00" * 10 + b"\x00" * 192
    opts = bytes([53, 1, 2, 54, 4, 10, 0, 0, 1, 51, 4, 0, 0, 14, 16, 1, 4, 255, 255, 255, 0, 3, 4, 10, 0, 0, 1,
                  6, 4, 10, 0, 0, 1, 121, 5, 0, 10, 0, 0, 1, 255])
    write("dhcp", "offer", bootp + b"\x63\x82\x53\x63" + opts)
    write("dhcp", "ack", bootp + b"\x63\x82\x53\x63" + bytes([53, 1, 5]) + opts[3:])
    for i, path in enumerate(sys.argv[1:]):
        with open(path, "rb") as f:
            write("task_spec", str(i), f.read())


if __name__ == "__main__":
    main()
