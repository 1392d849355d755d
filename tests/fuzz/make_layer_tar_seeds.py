#!/usr/bin/env python3
"""Writes the seed corpus of the layer_tar fuzz target into tests/fuzz/corpus/layer_tar/ (seed-* files):
small layers in every tar dialect the reader knows, with the entries the applier treats specially. Layers of
one input are joined with "\\n=LAYER=\\n" (layer_tar_fuzz.cc). Needs GNU tar and zstd (old GNU sparse and
zstd seeds). Run from anywhere: python3 tests/fuzz/make_layer_tar_seeds.py
"""
import gzip
import io
import os
import subprocess
import tarfile
import tempfile

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "layer_tar")
SEP = b"\n=LAYER=\n"
T0 = 1700000000


def info(name, kind=tarfile.REGTYPE, mode=0o644, data=b"", **kw):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.size, ti.mtime = kind, mode, len(data), kw.pop("mtime", T0)
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti, data


def tar(entries, fmt=tarfile.PAX_FORMAT, end=True, global_headers=None):
    """The archive without tarfile's record padding; end=False also drops the last entry's padding and the
    end-of-archive blocks (the stream stops right after the last byte of data, as umoci writes it)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, pax_headers=global_headers) as t:
        for ti, data in entries:
            t.addfile(ti, io.BytesIO(data) if data else None)
    raw = buf.getvalue().rstrip(b"\0")
    if not end:
        return raw
    return raw + b"\0" * (-len(raw) % 512) + b"\0" * 1024


def write(name, data):
    with open(os.path.join(OUT, "seed-" + name), "wb") as f:
        f.write(data)


def main():
    os.makedirs(OUT, exist_ok=True)
    basic = [info("./", tarfile.DIRTYPE, 0o755), info("etc/", tarfile.DIRTYPE), info("etc/passwd", data=b"root\n"),
             info("/abs/name", data=b"a\n"), info("bin/sh", tarfile.LNKTYPE, linkname="etc/passwd"),
             info("bin/ls", tarfile.SYMTYPE, 0o777, linkname="../etc/passwd"),
             info("dev/null", tarfile.CHRTYPE, 0o666, devmajor=1, devminor=3),
             info("dev/wide", tarfile.BLKTYPE, 0o600, devmajor=300, devminor=70000),
             info("run/fifo", tarfile.FIFOTYPE), info("suid", mode=0o4755, data=b"s")]
    write("ustar-basic", tar(basic, tarfile.USTAR_FORMAT))
    write("gnu-long", tar([info("d/" + "L" * 150 + "/" + "M" * 150, data=b"long\n"),
                           info("d/link", tarfile.SYMTYPE, linkname="T" * 200),
                           info("d/big-ids", data=b"x", uid=3000000, gid=2**31, mtime=-86400)], tarfile.GNU_FORMAT))
    pax = [info("p/x", data=b"x\n", pax_headers={"SCHILY.xattr.user.k": "v", "SCHILY.xattr.trusted.t": "t",
                                                 "SCHILY.xattr.security.capability": "\x01\0\0\x02" + "\0" * 16}),
           info("p/frac", data=b"f", mtime=T0 + 0.25), info("p/short", data=b"y", pax_headers={"path": "p/renamed"})]
    write("pax-xattrs-global", tar(pax, global_headers={"comment": "global"}))
    noeof = tar([info("a", data=b"first"), info("b", data=b"ends without padding")], end=False)
    write("noeof.gz", gzip.compress(noeof, mtime=0))
    base = tar([info("etc/keep", data=b"k"), info("etc/gone", data=b"g"), info("usr/lib/", tarfile.DIRTYPE),
                info("lib", tarfile.SYMTYPE, 0o777, linkname="/usr/lib"), info("opt/sub/old", data=b"o"),
                info("data/orig", data=b"shared")])
    top = tar([info("etc/.wh.gone"), info("opt/sub/new", data=b"n"), info("opt/.wh..wh..opq"),
               info("lib/libnew.so", data=b"through a symlink"), info("data/again", tarfile.LNKTYPE, linkname="data/orig"),
               info("ghost/.wh.nothing"), info("etc/keep/", tarfile.DIRTYPE)])
    write("two-layers-whiteouts", base + SEP + top)
    sparse01 = tar([info("GNUSparseFile.0/s", data=b"helloabc", pax_headers={
        "GNU.sparse.numblocks": "2", "GNU.sparse.map": "0,5,10,3", "GNU.sparse.realsize": "15",
        "GNU.sparse.name": "sparse01"})])
    write("sparse-pax-0.1", sparse01)
    sparse10 = tar([info("GNUSparseFile.0/s", data=b"2\n0\n5\n10\n3\n".ljust(512, b"\0") + b"helloabc", pax_headers={
        "GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.realsize": "15", "GNU.sparse.name": "sparse10"})])
    write("sparse-pax-1.0", sparse10)
    write("escape", tar([info("ok", data=b"fine"), info("a/../../evil", data=b"x")]))
    write("symlink-loop", tar([info("loop", tarfile.SYMTYPE, linkname="loop"), info("loop/x", data=b"x")]))
    # A V7 header (no magic): a trailing slash makes a directory of a regular-file entry.
    v7 = bytearray(tar([info("olddir/", tarfile.AREGTYPE)], tarfile.USTAR_FORMAT)[:512])
    v7[257:265] = b"\0" * 8
    v7[148:156] = b" " * 8
    v7[148:156] = b"%06o\0 " % sum(v7)
    write("v7-dir", bytes(v7) + b"\0" * 1024)
    with tempfile.TemporaryDirectory() as d:
        sparse = os.path.join(d, "holes")
        with open(sparse, "wb") as f:
            for i in range(6):  # six data regions: more than an old GNU header holds, so an extension block
                f.seek(i * 8192)
                f.write(b"%d" % i * 512)
            f.truncate(6 * 8192)
        out = os.path.join(d, "l.tar")
        # -b 1: records of one block, so the archive ends with its two zero blocks and nothing more.
        subprocess.run(["tar", "--format=gnu", "--sparse", "-b", "1", "-C", d, "-cf", out, "holes"], check=True)
        write("sparse-old-gnu", open(out, "rb").read())
        plain = os.path.join(d, "p.tar")
        with open(plain, "wb") as f:
            f.write(tar(basic))
        subprocess.run(["zstd", "-q", "-19", plain, "-o", plain + ".zst"], check=True)
        write("basic.zst", open(plain + ".zst", "rb").read())


if __name__ == "__main__":
    main()
