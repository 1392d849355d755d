#!/usr/bin/env python3
"""Builds image_compat_test's corpus: layers written by the tools that make images (GNU tar, bsdtar, Python's
tarfile, Go's archive/tar, umoci, skopeo), each stack of layers also unpacked by `umoci unpack` (Go's
archive/tar and umoci's applier) as the reference tree to compare ours with.

Usage: make_corpus.py WORKDIR GOLAYERS
WORKDIR must be empty; GOLAYERS is the built tests/image/compat/golayers program. Writes WORKDIR/corpus.json:
  {"stacks": [{"name", "what": how the layers were made,
               "layers": [layer blob paths, bottom first] | "docker_archive": path,
               "reference": umoci's rootfs | null, "umoci_error": its message | null,
               "oracle": another stack whose reference this one must match (same content, other encoding),
               "expect": [{"path", "what": "only-ours" | "only-theirs" | "field", "field", "why"}],
               "refuse": text our conversion must fail with, "why"}]}
Any tool failing unexpectedly makes this script fail, and the test with it: nothing is skipped.
"""
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile

CAP_V2 = bytes([1, 0, 0, 2, 0, 0x20, 0, 0] + [0] * 12)  # cap_net_raw+ep, as setcap writes it
T0 = 1700000000


def run(*argv, cwd=None, ok=True):
    p = subprocess.run(list(argv), cwd=cwd, capture_output=True, timeout=60)
    if ok and p.returncode != 0:
        sys.exit("make_corpus: %s failed (%d): %s" % (" ".join(argv), p.returncode, p.stderr.decode(errors="replace")))
    return p


def sha256(data):
    return hashlib.sha256(data).hexdigest()


# --- a source tree with everything a layer can hold --------------------------------------------------------

def make_tree(root):
    def put(rel, data, mode=0o644, uid=0, gid=0):
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        os.chown(p, uid, gid)
        os.chmod(p, mode)
        return p

    def mkdir(rel, mode, uid=0, gid=0):
        p = os.path.join(root, rel)
        os.makedirs(p, exist_ok=True)
        os.chown(p, uid, gid)
        os.chmod(p, mode)

    os.makedirs(root)
    mkdir("etc", 0o755)
    put("etc/hostname", b"compat\n")
    put("etc/shadow", b"root:*:19000::::::\n", 0o640, 0, 42)
    put("usr/bin/tool", b"#!/bin/sh\necho tool\n", 0o4755)
    os.link(os.path.join(root, "usr/bin/tool"), os.path.join(root, "usr/bin/tool-again"))
    os.makedirs(os.path.join(root, "usr/sbin"))
    os.link(os.path.join(root, "usr/bin/tool"), os.path.join(root, "usr/sbin/tool-third"))
    put("usr/bin/ping", b"\x7fELF-ish ping", 0o755)
    put("usr/share/doc/big.bin", random.Random(7).randbytes(300 << 10))  # several extents' worth
    put("usr/lib/libfoo.so.1", b"lib\n", 0o755)
    os.symlink("libfoo.so.1", os.path.join(root, "usr/lib/libfoo.so"))
    os.symlink("/etc/hostname", os.path.join(root, "usr/bin/abs"))
    os.symlink("../nowhere/at/all", os.path.join(root, "usr/bin/dangling"))
    os.symlink("usr/lib", os.path.join(root, "lib"))
    put("opt/" + "n" * 200 + "/" + "m" * 120, b"long name\n")
    put("opt/" + "a" * 100 + "/" + "b" * 100 + "/" + "c" * 100 + "/leaf", b"long path\n")
    os.symlink("t" * 180, os.path.join(root, "opt/long-link"))
    put("opt/ünïcødé-名前.txt", "utf-8 name\n".encode())
    mkdir("srv", 0o1777)
    mkdir("srv/shared", 0o2775, 1000, 1000)
    mkdir("home/user", 0o700, 1000, 1000)
    put("home/user/.profile", b"PATH=/bin\n", 0o644, 1000, 1000)
    put("home/big/owned", b"large ids\n", 0o640, 3000000, 3000001)
    os.makedirs(os.path.join(root, "dev"))
    os.mknod(os.path.join(root, "dev/null"), 0o666 | 0o020000, os.makedev(1, 3))
    os.mknod(os.path.join(root, "dev/loop200"), 0o660 | 0o060000, os.makedev(7, 200))
    os.mknod(os.path.join(root, "dev/wide"), 0o600 | 0o020000, os.makedev(300, 70000))
    os.makedirs(os.path.join(root, "run"))
    os.mkfifo(os.path.join(root, "run/fifo"), 0o600)
    put("empty", b"", 0o600)
    sparse = put("var/lib/sparse.img", b"")
    with open(sparse, "r+b") as f:
        f.truncate(1 << 20)
        f.write(b"A" * 4096)
        f.seek(512 << 10)
        f.write(b"B" * 100)
    os.setxattr(os.path.join(root, "etc/hostname"), "user.comment", b"set by the test")
    os.setxattr(os.path.join(root, "srv/shared"), "user.dir", b"1")
    os.setxattr(os.path.join(root, "usr/bin/ping"), "security.capability", CAP_V2)
    os.setxattr(os.path.join(root, "etc/shadow"), "trusted.note", b"admin only")
    # Times last, children before their directories; sub-second parts for the formats that keep them.
    paths = []
    for d, dirs, files in os.walk(root):
        paths += [os.path.join(d, n) for n in dirs + files]
    for i, p in enumerate(sorted(paths, key=lambda p: -p.count("/"))):
        t = (T0 + 1000 * i) * 10**9 + 123456789
        os.utime(p, ns=(t, t), follow_symlinks=False)


# --- layouts and umoci unpack -----------------------------------------------------------------------------

def write_layout(layout, layers, tag="t"):
    """An OCI image layout whose image has exactly these layer blobs (bytes as given)."""
    blobs = os.path.join(layout, "blobs", "sha256")
    os.makedirs(blobs)

    def put(data):
        digest = sha256(data)
        with open(os.path.join(blobs, digest), "wb") as f:
            f.write(data)
        return "sha256:" + digest

    descs, diff_ids = [], []
    for path in layers:
        data = open(path, "rb").read()
        compressed = data[:2] == b"\x1f\x8b"
        raw = gzip.decompress(data) if compressed else data
        diff_ids.append("sha256:" + sha256(raw))
        media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compressed else "")
        descs.append({"mediaType": media, "digest": put(data), "size": len(data)})
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": put(config), "size": len(config)},
                           "layers": descs}).encode()
    index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                "digest": put(manifest), "size": len(manifest),
                                                "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


def layout_layers(layout, tag):
    """The layer blob paths of a layout's tagged image (for layouts umoci or skopeo wrote)."""
    index = json.load(open(os.path.join(layout, "index.json")))
    desc = [m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag][0]

    def blob(digest):
        return os.path.join(layout, "blobs", *digest.split(":"))

    manifest = json.load(open(blob(desc["digest"])))
    return [blob(l["digest"]) for l in manifest["layers"]]


def unpack(stack, layout, tag="t"):
    bundle = os.path.join(os.path.dirname(layout), "bundle")
    p = run("umoci", "unpack", "--image", layout + ":" + tag, bundle, ok=False)
    if p.returncode == 0:
        stack["reference"] = os.path.join(bundle, "rootfs")
    else:
        stack["umoci_error"] = p.stderr.decode(errors="replace").strip().splitlines()[-1]


# --- layers written by Python's tarfile -------------------------------------------------------------------

def info(name, kind=tarfile.REGTYPE, mode=0o644, data=b"", **kw):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.size, ti.mtime = kind, mode, len(data), kw.pop("mtime", T0)
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti, data


def python_entries(fmt):
    es = [
        info("./", tarfile.DIRTYPE, 0o700),  # the root itself: containerd ignores it
        info("./etc/", tarfile.DIRTYPE, 0o755),
        info("./etc/passwd", data=b"root:x:0:0::/root:/bin/sh\n"),
        info("/abs/file", data=b"absolute name\n"),  # taken from the root
        info("dot//slashes/./file", data=b"uncleaned name\n"),
        info("trailing/", tarfile.DIRTYPE, 0o750),
        info("hl", tarfile.LNKTYPE, 0o644, linkname="/etc/passwd"),  # an absolute hard link target
        info("sl", tarfile.SYMTYPE, 0o777, linkname="etc/passwd"),
        info("dev/tty0", tarfile.CHRTYPE, 0o620, devmajor=4, devminor=0),
        info("dev/sdb", tarfile.BLKTYPE, 0o660, devmajor=8, devminor=16),
        info("run/pipe", tarfile.FIFOTYPE, 0o644),
        info("u/" + "x" * 99, data=b"name of 101 bytes\n"),
        info("p" * 120 + "/" + "q" * 100, data=b"ustar prefix\n"),
        info("unicode/çà-ñ-日本", data=b"x\n"),
        info("owned", mode=0o600, data=b"o\n", uid=1234, gid=5678),
    ]
    if fmt != tarfile.USTAR_FORMAT:
        es += [
            info("g/" + "L" * 200 + "/" + "M" * 150, data=b"long name\n"),
            info("g/longlink", tarfile.SYMTYPE, 0o777, linkname="T" * 300),
            info("g/bigid", data=b"big\n", uid=3000000, gid=4000000),
            info("g/old", data=b"before 1970\n", mtime=-86400),
        ]
    if fmt == tarfile.PAX_FORMAT:
        es += [
            info("pax/xattr", data=b"x\n", pax_headers={"SCHILY.xattr.user.k": "v", "SCHILY.xattr.security.capability":
                                                        CAP_V2.decode("latin-1")}),
            info("pax/frac", data=b"f\n", mtime=T0 + 0.5),
        ]
    return es


def write_python(path, fmt, entries, gz=False):
    with tarfile.open(path, "w:gz" if gz else "w", format=fmt, encoding="utf-8", errors="surrogateescape") as t:
        for ti, data in entries:
            t.addfile(ti, io.BytesIO(data) if data else None)


def python_expect(fmt):
    if fmt == tarfile.USTAR_FORMAT:
        return []
    return [{"path": "/g/old", "what": "field", "field": "mtime",
             "why": "a time before 1970: containerd's boundTime sets it to 0, umoci keeps it"}]


# --- the stacks -------------------------------------------------------------------------------------------

def main():
    work, golayers = sys.argv[1], sys.argv[2]
    src = os.path.join(work, "src")
    make_tree(src)
    stacks = []

    def stack(name, what, **kw):
        s = {"name": name, "what": what, "reference": None, "umoci_error": None, "expect": []}
        s.update(kw)
        os.makedirs(os.path.join(work, name))
        stacks.append(s)
        return s, os.path.join(work, name)

    def single(name, what, layer_of, expect=(), oracle=None):
        s, d = stack(name, what, expect=list(expect))
        layer = layer_of(d)
        s["layers"] = [layer]
        write_layout(os.path.join(d, "oci"), [layer])
        unpack(s, os.path.join(d, "oci"))
        if oracle:
            s["oracle"] = oracle
        return s

    def gnutar(*opts):
        def make(d):
            out = os.path.join(d, "layer.tar")
            run("tar", "--numeric-owner", *opts, "-C", src, "-cf", out, ".")
            return out
        return make

    xattrs = ("--xattrs", "--xattrs-include=*")
    single("gnutar-gnu", "GNU tar 1.34 --format=gnu: ./ names, 'L'/'K' long names, base-256 ids",
           gnutar("--format=gnu"))
    single("gnutar-posix", "GNU tar --format=posix --xattrs: pax names, sub-second times, SCHILY.xattr",
           gnutar("--format=posix", *xattrs))
    for version in ("0.0", "0.1", "1.0"):
        single("gnutar-posix-sparse-" + version, "GNU tar --format=posix --sparse --sparse-version=" + version,
               gnutar("--format=posix", *xattrs, "--sparse", "--sparse-version=" + version))
    s = single("gnutar-gnu-sparse", "GNU tar --format=gnu --sparse: old GNU sparse entries (type 'S')",
               gnutar("--format=gnu", "--sparse"), oracle="gnutar-gnu")
    s["why"] = ("Go returns type 'S' entries as TypeGNUSparse, which neither umoci nor containerd can apply; "
                "we read them as the regular files they are")

    def bsdtar(fmt):
        def make(d):
            out = os.path.join(d, "layer.tar")
            run("bsdtar", "--format", fmt, "--numeric-owner", "-C", src, "-cf", out, ".")
            return out
        return make

    single("bsdtar-pax", "bsdtar 3.6 --format pax: SCHILY and LIBARCHIVE xattrs, GNU sparse 1.0", bsdtar("pax"))
    single("bsdtar-gnutar", "bsdtar --format gnutar: 'L'/'K' long names written by libarchive", bsdtar("gnutar"))

    for fmt, tag in ((tarfile.USTAR_FORMAT, "ustar"), (tarfile.GNU_FORMAT, "gnu"), (tarfile.PAX_FORMAT, "pax")):
        def make(d, fmt=fmt):
            out = os.path.join(d, "layer.tar.gz")
            write_python(out, fmt, python_entries(fmt), gz=True)
            return out
        single("python-" + tag, "Python tarfile %s format: root entry, absolute names, uncleaned names" % tag, make,
               python_expect(fmt))

    gout = os.path.join(work, "golayers")
    os.makedirs(gout)
    run(golayers, gout)
    for name, what in (("go-pax.tar", "Go archive/tar PAX: xattrs, large ids, sub-second time, long names"),
                       ("go-gnu.tar", "Go archive/tar GNU: 'L'/'K' long names, base-256 numbers"),
                       ("go-ustar.tar", "Go archive/tar USTAR: prefix/name split"),
                       ("go-noeof.tar.gz", "Go archive/tar never closed: no padding, no end-of-archive blocks")):
        single(name.split(".")[0], what, lambda d, name=name: os.path.join(gout, name))

    # umoci's own layers (its generator is Go's archive/tar, never closed: no end blocks), three of them.
    s, d = stack("umoci", "umoci 0.4.7 new + insert (a tree) + insert --whiteout + insert --opaque")
    layout = os.path.join(d, "oci")
    run("umoci", "init", "--layout", layout)
    run("umoci", "new", "--image", layout + ":t")
    run("umoci", "insert", "--image", layout + ":t", src, "/")
    run("umoci", "insert", "--image", layout + ":t", "--whiteout", "/etc/shadow")
    other = os.path.join(d, "opaque-src")
    os.makedirs(other)
    with open(os.path.join(other, "only"), "w") as f:
        f.write("the only file left in /usr/share\n")
    run("umoci", "insert", "--image", layout + ":t", "--opaque", other, "/usr/share")
    s["layers"] = layout_layers(layout, "t")
    unpack(s, layout)

    # Two layers with whiteouts, an opaque directory, writes through a symlinked directory, hard links to
    # the lower layer, and replacements of a directory by a file and back.
    s, d = stack("python-multilayer", "Python tarfile pax, two layers: whiteouts, opaque dir, symlinked parent")
    base = [info("etc/", tarfile.DIRTYPE, 0o755), info("etc/keep", data=b"k\n"), info("etc/gone", data=b"g\n"),
            info("usr/lib/", tarfile.DIRTYPE, 0o755), info("lib", tarfile.SYMTYPE, 0o777, linkname="usr/lib"),
            info("opt/sub/old", data=b"old\n"), info("opt/top", data=b"top\n"),
            info("was-dir/inner", data=b"i\n"), info("was-file", data=b"f\n"),
            info("data/original", data=b"shared inode\n")]
    top = [info("etc/.wh.gone"), info("opt/sub/new", data=b"new\n"), info("opt/.wh..wh..opq"),
           info("lib/libnew.so", data=b"through the symlink\n"), info("data/second-name", tarfile.LNKTYPE,
                                                                       linkname="data/original"),
           info("was-dir", data=b"now a file\n"), info("was-file/", tarfile.DIRTYPE, 0o711),
           info("ghost/.wh.nothing")]
    layers = [os.path.join(d, "base.tar"), os.path.join(d, "top.tar")]
    write_python(layers[0], tarfile.PAX_FORMAT, base)
    write_python(layers[1], tarfile.PAX_FORMAT, top)
    s["layers"] = layers
    s["expect"] = [{"path": "/ghost", "what": "only-ours",
                    "why": "containerd creates a whiteout's missing parent (mkparent), umoci does not"}]
    write_layout(os.path.join(d, "oci"), layers)
    unpack(s, os.path.join(d, "oci"))

    # skopeo's conversions of stacks above: to a docker-archive, and to zstd-compressed layers.
    s, d = stack("skopeo-docker-archive", "skopeo copy oci:gnutar-posix docker-archive:", oracle="gnutar-posix")
    archive = os.path.join(d, "image.tar")
    run("skopeo", "copy", "oci:" + os.path.join(work, "gnutar-posix", "oci") + ":t",
        "docker-archive:" + archive + ":compat:latest")
    s["docker_archive"] = archive
    s, d = stack("skopeo-zstd", "skopeo copy --dest-compress-format zstd oci:python-pax oci:", oracle="python-pax",
                 expect=python_expect(tarfile.PAX_FORMAT))
    run("skopeo", "copy", "--dest-compress-format", "zstd", "oci:" + os.path.join(work, "python-pax", "oci") + ":t",
        "oci:" + os.path.join(d, "oci") + ":t")
    s["layers"] = layout_layers(os.path.join(d, "oci"), "t")
    if open(s["layers"][0], "rb").read(4) != b"\x28\xb5\x2f\xfd":
        sys.exit("make_corpus: skopeo did not write a zstd layer")

    # What must be refused: a name that leads outside the root, and a stream cut inside a file's data.
    def escaping(d):
        out = os.path.join(d, "layer.tar")
        write_python(out, tarfile.PAX_FORMAT, [info("ok", data=b"fine\n"), info("a/../../evil", data=b"x\n")])
        return out
    s = single("refuse-escape", "a name leading outside the root after cleaning", escaping)
    s["refuse"] = "leads outside the root"
    s["why"] = "Docker refuses such names (breakoutError); containerd and umoci clamp them to the root"

    def truncated(d):
        full = os.path.join(d, "full.tar")
        write_python(full, tarfile.GNU_FORMAT, [info("a", data=b"a" * 3000), info("b", data=b"b" * 3000)])
        data = open(full, "rb").read()
        out = os.path.join(d, "cut.tar")
        with open(out, "wb") as f:
            f.write(data[:512 * 8 + 1000])  # inside b's data
        return out
    s = single("refuse-truncated", "a stream that ends inside a file's data", truncated)
    s["refuse"] = "unexpected EOF"
    s["why"] = "Go refuses it too (io.ErrUnexpectedEOF): only a missing padding or end-of-archive is tolerated"

    with open(os.path.join(work, "corpus.json"), "w") as f:
        json.dump({"stacks": stacks}, f, indent=1)


if __name__ == "__main__":
    main()
