// golayers writes layer tarballs with Go's archive/tar, the writer behind Docker, containerd, buildkit,
// umoci and skopeo, for image_compat_test's corpus. Usage: golayers OUTDIR. It writes, into OUTDIR:
//
//	go-pax.tar     PAX: long names, xattrs, large ids, sub-second times, links, devices
//	go-gnu.tar     GNU: 'L'/'K' long names and base-256 numbers
//	go-ustar.tar   USTAR: names split into prefix and name
//	go-noeof.tar.gz  a gzip stream whose tar ends right after the last file's data, as a tar.Writer that is
//	               never closed leaves it (what Debian's umoci 0.4.7 writes)
//
// Standard library only, so it builds offline in GOPATH mode.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

type entry struct {
	hdr  tar.Header
	data string
}

func file(name string, mode int64, data string) entry {
	return entry{tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data))}, data}
}

func dir(name string, mode int64) entry {
	return entry{tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode}, ""}
}

func link(flag byte, name, target string) entry {
	return entry{tar.Header{Typeflag: flag, Name: name, Linkname: target, Mode: 0777}, ""}
}

func dev(flag byte, name string, major, minor int64) entry {
	return entry{tar.Header{Typeflag: flag, Name: name, Mode: 0660, Devmajor: major, Devminor: minor}, ""}
}

// common: the entries every format can hold.
func common() []entry {
	long := strings.Repeat("d", 90) + "/" + strings.Repeat("e", 60) + "/" + strings.Repeat("f", 60) // > 100: ustar splits it
	es := []entry{
		dir("etc/", 0755),
		file("etc/hostname", 0644, "golayers\n"),
		file("etc/shadow", 0640, "root:*:19000::::::\n"),
		dir("srv/", 01777),
		dir("srv/shared/", 02775),
		file("usr/bin/tool", 04755, "#!/bin/sh\necho tool\n"),
		link(tar.TypeLink, "usr/bin/tool-again", "usr/bin/tool"),
		link(tar.TypeSymlink, "usr/bin/rel", "tool"),
		link(tar.TypeSymlink, "usr/bin/abs", "/etc/hostname"),
		link(tar.TypeSymlink, "usr/bin/dangling", "../nowhere/at/all"),
		dev(tar.TypeChar, "dev/null", 1, 3),
		dev(tar.TypeBlock, "dev/loop200", 7, 200),
		entry{tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0600}, ""},
		file(long, 0644, "deep\n"),
		file("empty", 0600, ""),
	}
	for i := range es {
		es[i].hdr.ModTime = time.Unix(1700000000+int64(i), 0)
		es[i].hdr.Uid, es[i].hdr.Gid = 0, 0
	}
	return es
}

func extended() []entry {
	big := strings.Repeat("0123456789abcdef", 8192) // 128 KiB
	es := []entry{
		file("opt/"+strings.Repeat("n", 200)+"/"+strings.Repeat("m", 120), 0644, "very long path\n"),
		file("opt/ünïcødé-名前.txt", 0644, "utf-8 name\n"),
		file("opt/big.bin", 0644, big),
		link(tar.TypeSymlink, "opt/long-link", strings.Repeat("t", 150)),
		link(tar.TypeLink, "opt/"+strings.Repeat("h", 120), "opt/big.bin"),
		dev(tar.TypeChar, "dev/wide", 300, 70000),
	}
	owned := file("home/user/owned", 0640, "owned by a large uid\n")
	owned.hdr.Uid, owned.hdr.Gid = 3000000, 3000001
	es = append(es, owned)
	for i := range es {
		if es[i].hdr.Uid == 0 {
			es[i].hdr.Uid, es[i].hdr.Gid = 1000, 1000
		}
		es[i].hdr.ModTime = time.Unix(1600000000+int64(i), 0)
	}
	return es
}

// linkMetadata gives hard link entries their target's metadata, as tar.FileInfoHeader does (containerd
// applies a link header's owner, mode and time to the shared inode; umoci ignores them).
func linkMetadata(es []entry) []entry {
	byName := map[string]tar.Header{}
	for i := range es {
		h := &es[i].hdr
		if t, ok := byName[h.Linkname]; ok && h.Typeflag == tar.TypeLink {
			h.Mode, h.Uid, h.Gid, h.ModTime = t.Mode, t.Uid, t.Gid, t.ModTime
		}
		byName[h.Name] = *h
	}
	return es
}

func write(path string, format tar.Format, es []entry, closeTar bool, gz bool) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range linkMetadata(es) {
		h := e.hdr
		h.Format = format
		if err := tw.WriteHeader(&h); err != nil {
			return fmt.Errorf("%s: %s: %w", path, h.Name, err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			return err
		}
	}
	// Without Close (nor Flush) the last file's padding and the two end blocks are never written.
	if closeTar {
		if err := tw.Close(); err != nil {
			return err
		}
	}
	out := buf.Bytes()
	if gz {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		if _, err := zw.Write(out); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		out = z.Bytes()
	}
	return os.WriteFile(path, out, 0644)
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: golayers OUTDIR")
		os.Exit(2)
	}
	out := os.Args[1]
	pax := append(common(), extended()...)
	pax[1].hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.comment": "set by Go"}
	pax[5].hdr.PAXRecords = map[string]string{
		"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
	}
	pax[0].hdr.ModTime = time.Unix(1700000000, 123456789)
	gnu := append(common(), extended()...)
	jobs := []struct {
		name     string
		format   tar.Format
		es       []entry
		closeTar bool
		gz       bool
	}{
		{"go-pax.tar", tar.FormatPAX, pax, true, false},
		{"go-gnu.tar", tar.FormatGNU, gnu, true, false},
		{"go-ustar.tar", tar.FormatUSTAR, common(), true, false},
		{"go-noeof.tar.gz", tar.FormatPAX, append(common(), file("last", 0644, "ends here")), false, true},
	}
	for _, j := range jobs {
		if err := write(filepath.Join(out, j.name), j.format, j.es, j.closeTar, j.gz); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
