#!/usr/bin/env bash
# Trains the Fashion-MNIST ViT and ResNet, converts them into weights/fmnist_vit and
# weights/fmnist_resnet (graphs, manifest with the 10 class names, trained.safetensors;
# the untrained weights come from the manifest in TypeScript), and makes the test fixtures.
# About 35 minutes on 2 cores. Needs PyTorch (/usr/bin/python3) and
# apt-get install dataset-fashion-mnist.
#
#   bash tools/fmnist_build.sh            # everything
#   bash tools/fmnist_build.sh convert    # only convert + fixtures (checkpoints in out/fmnist)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}
CK=out/fmnist

if [ "${1:-all}" = all ]; then
  "$PY" tools/train_fmnist.py --out "$CK" --threads 2   # as the committed ViT was made (the ResNet: 1 thread)
fi
read -r MEAN STD < <("$PY" -c "import json; s = json.load(open('$CK/stats.json')); print(repr(s['mean']), repr(s['std']))")
ARCH_VIT=$("$PY" -c "import sys; sys.path.insert(0, 'tools'); import train_fmnist as t; print(t.arch_text(t.VIT_ARCH))")
ARCH_RESNET=$("$PY" -c "import sys; sys.path.insert(0, 'tools'); import train_fmnist as t; print(t.arch_text(t.RESNET_ARCH))")
"$PY" tools/convert.py custom --arch "$ARCH_VIT" --image-size 32 --weights "$CK/vit.pth" --name trained \
  --mean "$MEAN,$MEAN,$MEAN" --std "$STD,$STD,$STD" --out weights/fmnist_vit
"$PY" tools/convert.py resnet_custom --arch "$ARCH_RESNET" --image-size 32 --weights "$CK/resnet.pth" --name trained \
  --mean "$MEAN,$MEAN,$MEAN" --std "$STD,$STD,$STD" --out weights/fmnist_resnet
"$PY" tools/train_fmnist.py --label weights/fmnist_vit weights/fmnist_resnet
"$PY" tools/fmnist_fixtures.py --out tests/fixtures/fmnist
