#!/usr/bin/env bash
# Trains the colour photograph ViT (undercomplete stem: patch 8, 3·8² = 192 → hidden 64) on crops of
# ten photographs, converts it into weights/colour_vit (graphs, manifest with the ten categories and
# the "training" record, trained.safetensors; the untrained weights come from the manifest in
# TypeScript), and makes the test fixtures (tests/fixtures/colour_vit). See tools/train_colour.py.
# About 45 minutes of wall time (18 of CPU time, 1 torch thread) on 2 cores shared with other jobs (the committed run's
# weights/colour_vit/training_log.md has its times). Needs PyTorch (/usr/bin/python3), python3-pil
# and Debian's lomiri-wallpapers-16.04 (its photographs are the training data): installed here
# with apt-get when missing and run as root. Without root:
#   apt-get download lomiri-wallpapers-16.04 && dpkg-deb -x lomiri-wallpapers-16.04_*.deb DIR
#   PHOTOS=DIR/usr/share/backgrounds bash tools/colour_build.sh
#
#   bash tools/colour_build.sh            # everything
#   bash tools/colour_build.sh convert    # only convert + fixtures (checkpoint in out/colour)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}
CK=out/colour
PKG=lomiri-wallpapers-16.04
PHOTOS=${PHOTOS:-/usr/share/backgrounds}

if [ ! -f "$PHOTOS/seeding_by_Clements_Engelhardt.jpg" ]; then
  if [ "$(id -u)" = 0 ] && [ "$PHOTOS" = /usr/share/backgrounds ]; then
    apt-get install -y --no-install-recommends "$PKG"
  else
    echo "error: no $PKG photographs in $PHOTOS: expected apt-get install $PKG (as root), or" \
      "PHOTOS=DIR/usr/share/backgrounds after apt-get download $PKG && dpkg-deb -x ${PKG}_*.deb DIR" >&2
    exit 2
  fi
fi
if [ "${1:-all}" = all ]; then
  # as the committed model was made (1 torch thread: the machine was shared)
  "$PY" tools/train_colour.py --out "$CK" --photos "$PHOTOS" --threads "${THREADS:-1}"
fi
read -r MEAN STD < <("$PY" -c "import json; s = json.load(open('$CK/stats.json')); \
print(','.join(map(repr, s['mean'])), ','.join(map(repr, s['std'])))")
read -r ARCH SIZE < <("$PY" -c "import sys; sys.path.insert(0, 'tools'); import train_colour as t; \
print(t.arch_text(), t.IMAGE)")
"$PY" tools/convert.py custom --arch "$ARCH" --image-size "$SIZE" --weights "$CK/vit.pth" --name trained \
  --mean "$MEAN" --std "$STD" --out weights/colour_vit --check
"$PY" tools/train_colour.py --label weights/colour_vit --out "$CK"
"$PY" tools/colour_fixtures.py --photos "$PHOTOS" --out tests/fixtures/colour_vit
