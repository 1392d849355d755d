#!/usr/bin/env bash
# Superseded by the conversion section of the benchmark suite, bench/run (issue 18, item 3): the same comparison
# (our converter against `umoci unpack` + `mkfs.ext4 -d`, non-sanitized Release build) on three image shapes,
# next to `gzip -dc` and `mkfs.erofs`, plus conversion time against image size; it writes
# docs/performance.md. This wrapper keeps the old command working; RUNS and NFC_IMAGE_TOOL still apply.
set -euo pipefail
if [ $# -gt 0 ]; then
  echo "bench/image/run.sh: source directories are no longer taken; bench/run conversion builds its own shapes" >&2
fi
exec "$(dirname "$0")/../run" conversion
