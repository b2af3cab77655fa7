#!/usr/bin/env bash
# Regenerates the measured tables and montages in docs/ (untrained ViT-B/32, the demo photo,
# a fixed budget of 1500 steps per cell, as the essay's n). Cells are cached under docs/runs/
# (not committed), so an interrupted run continues where it stopped. About 30 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
DENO=${DENO:-deno}
RUN="$DENO run -A mod.ts"
COMMON=(--model vit_b_32 --weights untrained --seed 0 --image assets/chelsea.png --steps 1500 --quiet)
mkdir -p docs/runs

grid() { # NAME, then grid options
  local name=$1; shift
  $RUN grid "${COMMON[@]}" --out "docs/runs/$name" "$@"
  cp "docs/runs/$name/grid.png" "docs/$name.png"
  cp "docs/runs/$name/grid.md" "docs/$name.md"
}

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
