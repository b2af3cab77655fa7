#!/usr/bin/env bash
# Regenerates the measured tables and montages in docs/. Cells are cached under docs/runs/ (not
# committed), so an interrupted run continues where it stopped.
#
#   bash tools/experiments.sh [vit] [architectures]     (default: both)
#
# vit: untrained ViT-B/32, the demo photo, 1500 steps per cell (the essay's n); ~30 min on 2 cores.
# architectures: untrained ResNet50, MLP-Mixers (patch 16 and 8, hidden 1024) and the FF-only ViT
# (linear_base) next to ViT-B/32 and ViT-B/16, a fixed budget of 300 steps per cell, two
# learning rates; ~2 hours on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
DENO=${DENO:-deno}
RUN="$DENO run -A mod.ts"
COMMON=(--model vit_b_32 --weights untrained --seed 0 --image assets/chelsea.png --steps 1500 --quiet)
ARCH=(--weights untrained --seed 0 --image assets/chelsea.png --steps 300 --quiet)
SECTIONS=("${@:-vit architectures}")
mkdir -p docs/runs
want() { [[ " ${SECTIONS[*]} " == *" $1 "* ]]; }

grid() { # NAME, then grid options (the ViT-B/32 settings)
  local name=$1; shift
  $RUN grid "${COMMON[@]}" --out "docs/runs/$name" "$@"
  cp "docs/runs/$name/grid.png" "docs/$name.png"
  cp "docs/runs/$name/grid.md" "docs/$name.md"
}

arch() { # NAME, then grid options (--model, --layers, rows) at the architectures' budget
  local name=$1 rc=0 since; shift
  since=$(mktemp)
  # exit 1 with a fresh metrics.json counting diverged cells is a finding, not a failure
  $RUN grid "${ARCH[@]}" --out "docs/runs/$name" "$@" || rc=$?
  if [ "$rc" -ne 0 ] && ! { [ "$rc" -eq 1 ] && [ "docs/runs/$name/metrics.json" -nt "$since" ] &&
    grep -q '"diverged": *[1-9]' "docs/runs/$name/metrics.json"; }; then
    exit "$rc"
  fi
  rm -f "$since"
  cp "docs/runs/$name/grid.png" "docs/$name.png"
  cp "docs/runs/$name/grid.md" "docs/$name.md"
}

if want architectures; then
  # Rows: intact and without layer norms at the ViT's learning rate (0.01→0.001), and at a
  # quarter of it: a fixed budget favours whichever model that rate suits, so each model's best
  # row is compared too.
  NOLN=(--variant "intact=" --variant "no layer norms=--remove layernorm")
  Q=(--variant "lr /4=--lr 0.0025:0.00025")
  QN=(--variant "no layer norms, lr /4=--remove layernorm --lr 0.0025:0.00025")
  # (1) ResNet50 against depth (its first bottleneck and the end of each stage) next to ViT-B/32;
  #     ResNet's deep layers diverge at the ViT's learning rate, so it gets two smaller ones
  arch arch_vit_b_32 --model vit_b_32 --layers 1,4,8,12 "${NOLN[@]}" "${Q[@]}"
  arch arch_resnet50 --model resnet50 --layers 1,layer1,layer2,layer3,layer4 --variant "intact=" \
    --variant "lr /10=--lr 0.001:0.0001" --variant "lr /100=--lr 0.0001:0.00001"
  # (2) mixer patch 16 vs patch 8 (hidden 1024, 8 blocks), with and without layer norms; patch 8
  #     has 4x the tokens and costs ~2 s a step at block 8, so it stops at block 4
  arch arch_mixer_p16 --model mixer_p16_d1024 --layers 1,4,8 "${NOLN[@]}" "${Q[@]}" "${QN[@]}"
  arch arch_mixer_p8 --model mixer_p8_d1024 --layers 1,4 "${NOLN[@]}" "${Q[@]}" "${QN[@]}"
  # (3) the FF-only ViT (Melas-Kyriazi's linear_base, patch 16) against ViT-B/32 above, and
  #     against ViT-B/16, which has its patch size and token count
  arch arch_ffvit --model linear_base --layers 1,4,8,12 "${NOLN[@]}" "${Q[@]}"
  arch arch_vit_b_16 --model vit_b_16 --layers 1,4,8,12 "${NOLN[@]}" "${Q[@]}"
  # PSNR against relative depth: each model's best learning rate, with and without layer norms
  PLOT="$DENO run -A tools/depth_plot.ts"
  $PLOT docs/arch_depth.png "representation against depth: untrained, 300 steps, best lr" \
    "docs/runs/arch_vit_b_32=ViT-B/32@intact|lr /4" "docs/runs/arch_vit_b_16=ViT-B/16@intact|lr /4" \
    "docs/runs/arch_resnet50=ResNet50@intact|lr /10|lr /100" \
    "docs/runs/arch_mixer_p16=mixer, patch 16@intact|lr /4" "docs/runs/arch_mixer_p8=mixer, patch 8@intact|lr /4" \
    "docs/runs/arch_ffvit=FF-only ViT@intact|lr /4"
  $PLOT docs/arch_depth_no_ln.png "without layer norms: untrained, 300 steps" \
    "docs/runs/arch_vit_b_32=ViT-B/32@no layer norms" "docs/runs/arch_vit_b_16=ViT-B/16@no layer norms" \
    "docs/runs/arch_mixer_p16=mixer, patch 16@no layer norms|no layer norms, lr /4" \
    "docs/runs/arch_mixer_p8=mixer, patch 8@no layer norms|no layer norms, lr /4" \
    "docs/runs/arch_ffvit=FF-only ViT@no layer norms"
fi
want vit || { echo "docs/ updated" >&2; exit 0; }

# Issue "procedures": representation against depth. Issue "ablations" (1): with and without layer norms.
grid depth --layers 1,4,8,12 --variant "intact=" --variant "no layer norms=--remove layernorm"
# (2) no residuals in encoders 1-4, layer 4, with and without attention in encoders 1-4
grid residual --layers 4 \
  --variant "intact=" \
  --variant "no residuals=--remove residual --remove-layers 1-4" \
  --variant "no residuals, no attention=--remove residual,attention --remove-layers 1-4"
# (4) another seed's stem / first ln_1 / position embedding swapped into the seed-0 model
grid swaps --layers 1,4 \
  --variant "seed 0=" \
  --variant "stem from seed 1=--swap conv_proj=untrained:1" \
  --variant "ln_1 of encoder 1 from seed 1=--swap encoder.layers.0.ln_1=untrained:1" \
  --variant "pos. embedding from seed 1=--swap pos_embedding=untrained:1"
# (3) one encoder of LN + attention with no residual (and no MLP), run long; a control with residuals
for v in "attn:--remove residual,mlp,ln2 --remove-layers 1" "attn_res:--remove mlp,ln2 --remove-layers 1"; do
  name=${v%%:*}
  # shellcheck disable=SC2086
  $RUN invert "${COMMON[@]}" --steps 10000 --layer 1 --trace-every 100 ${v#*:} --out "docs/runs/long_$name" ||
    [ -f "docs/runs/long_$name/metrics.json" ]
  cp "docs/runs/long_$name/convergence.png" "docs/long_$name.png"
  cp "docs/runs/long_$name/side_by_side.png" "docs/long_${name}_image.png"
done
echo "docs/ updated" >&2
