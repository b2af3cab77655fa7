#!/usr/bin/env bash
# Regenerates every committed graph folder under weights/ and the test fixtures.
# Needs PyTorch, torchvision and onnx (Debian: python3-torch python3-torchvision python3-onnx).
# tools/convert.py is the converter's command line (the package tools/vitrep_convert). The graphs come
# out byte-identical for the same torch/onnx; the fixtures' reference outputs (float32 sums) can differ
# in their last bits between machines.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}
for m in vit_b_16 vit_b_32 vit_l_16 vit_l_32 vit_h_14; do
  "$PY" tools/convert.py "$m" --weights untrained --graphs-only --out "weights/$m" --check
done
# the large-image configurations of the SWAG weights (ViT-L/16 at 512, ViT-H/14 at 518)
"$PY" tools/convert.py vit_l_16 --weights untrained --image-size 512 --graphs-only --out weights/vit_l_16_512 --check --check-layers 2
"$PY" tools/convert.py vit_h_14 --weights untrained --image-size 518 --graphs-only --out weights/vit_h_14_518 --check --check-layers 2
"$PY" tools/make_fixtures.py
# attentionless models: timm's mixer presets, the essay's untrained mixers (hidden 1024, patch 16 and 8,
# feature MLP first), and the feed-forward-only ViTs
for m in mixer_b16_224 mixer_l16_224 linear_tiny linear_base; do
  "$PY" tools/convert.py "$m" --weights untrained --graphs-only --out "weights/$m" --check --check-layers 2
done
"$PY" tools/convert.py mixer --arch patch=16,layers=8,hidden=1024,tokens_mlp=512,channels_mlp=4096,order=channel_first \
  --image-size 224 --weights untrained --graphs-only --out weights/mixer_p16_d1024 --check --check-layers 2
"$PY" tools/convert.py mixer --arch patch=8,layers=8,hidden=1024,tokens_mlp=512,channels_mlp=4096,order=channel_first \
  --image-size 224 --weights untrained --graphs-only --out weights/mixer_p8_d1024 --check --check-layers 2
"$PY" tools/convert.py resnet50 --weights untrained --graphs-only --out weights/resnet50 --check
"$PY" tools/make_resnet_fixtures.py
# the Fashion-MNIST models trained here (weights/fmnist_*: training, conversion, fixtures; ~35 minutes,
# needs apt-get install dataset-fashion-mnist): only with FMNIST=1
if [ "${FMNIST:-0}" = 1 ]; then
  bash tools/fmnist_build.sh
fi
# the colour photograph ViT trained here (weights/colour_vit: training, conversion, fixtures; ~45 minutes
# on a shared 2-core machine, needs apt-get install lomiri-wallpapers-16.04): only with COLOUR=1
if [ "${COLOUR:-0}" = 1 ]; then
  bash tools/colour_build.sh
fi
