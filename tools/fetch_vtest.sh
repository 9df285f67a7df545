#!/usr/bin/env bash
# Fetch OpenCV's sample pedestrian video vtest.avi (768x576, 795 frames, 10 fps; no ground truth)
# from Debian's opencv-doc package, for the MOT runtime benchmark (evaluation/bench_mot_video.py).
# Needs apt-get (no root for `apt-get download`; an `apt-get update` may be needed first). Licence:
# OpenCV sample data (BSD-3-Clause / Apache-2.0, see the package's copyright file).
# Usage: tools/fetch_vtest.sh [DEST_DIR]   (default runs/data) -> DEST_DIR/vtest.avi
set -euo pipefail
dest=${1:-runs/data}
sha=45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf
mkdir -p "$dest"
if [ -f "$dest/vtest.avi" ] && echo "$sha  $dest/vtest.avi" | sha256sum -c --quiet; then
  echo "$dest/vtest.avi"; exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download opencv-doc >/dev/null 2>&1) || {
  echo "fetch_vtest: 'apt-get download opencv-doc' failed (try 'apt-get update' first)" >&2; exit 1; }
dpkg -x "$work"/opencv-doc_*.deb "$work/x"
cp "$work/x/usr/share/doc/opencv-doc/examples/data/vtest.avi" "$dest/vtest.avi"
echo "$sha  $dest/vtest.avi" | sha256sum -c --quiet || { echo "fetch_vtest: sha256 mismatch" >&2; exit 1; }
echo "$dest/vtest.avi"
