#!/usr/bin/env bash
# The essay's trained-model experiments on the Fashion-MNIST ViT and ResNet
# (weights/fmnist_vit, weights/fmnist_resnet; made by tools/fmnist_build.sh), all through
# vitrep: the CLI's generate, grid and filters commands and tools/fmnist_eval.ts.
# Runs go to docs/runs/fmnist_* (not committed); figures and tables to docs/fmnist_*.
# docs/fmnist.md discusses them. About 15 minutes on 2 idle cores.
#
#   bash tools/fmnist_experiments.sh [accuracy|generate|swaps|depth|filters|report]...   # default: all
set -euo pipefail
cd "$(dirname "$0")/.."
VITREP=(deno run -A mod.ts)
EVAL=(deno run -A tools/fmnist_eval.ts)
RUNS=docs/runs
CLASSES=0,1,2,3,4,5,6,7,8,9
IMAGES=(tests/fixtures/fmnist/sample_0.png tests/fixtures/fmnist/sample_7.png)
# every tensor of the trained weight set, as swaps into an untrained model
ALL_VIT="--swap conv_proj=trained --swap class_token=trained --swap encoder=trained --swap heads=trained"
ALL_RESNET="--swap conv1=trained --swap bn1=trained --swap layer1=trained --swap layer2=trained"
ALL_RESNET+=" --swap layer3=trained --swap layer4=trained --swap fc=trained"

accuracy() {
  "${EVAL[@]}" accuracy --out docs/fmnist_accuracy.json
}

generate() {
  # 10 classes per model, 3 random starts each. 32² models with 4² patches: a 40² jitter canvas,
  # the essay's blur (σ 2.4 → 0 at 224²) scaled to 0.5 → 0, and a larger step (2 → 0.2)
  for m in vit resnet; do
    for seed in 0 1 2; do
      "${VITREP[@]}" generate --model weights/fmnist_$m --weights trained --class $CLASSES --seed $seed \
        --steps 300 --jitter-after 150 --canvas 40 --lr 2:0.2 --sigma 0.5:0 --quiet --out $RUNS/fmnist_gen_${m}_s$seed
      "${EVAL[@]}" transfer --dir $RUNS/fmnist_gen_${m}_s$seed --out docs/fmnist_transfer_${m}_s$seed.json
    done
    cp $RUNS/fmnist_gen_${m}_s0/generated_grid.png docs/fmnist_generated_$m.png
  done
}

swaps() {
  # trained parts in the untrained ViT: representation at input processing (0) and encoder 1
  for i in "${!IMAGES[@]}"; do
    "${VITREP[@]}" grid --model weights/fmnist_vit --weights untrained --image "${IMAGES[$i]}" --layers 0,1 \
      --variant "untrained=" \
      --variant "trained conv_proj=--swap conv_proj=trained" \
      --variant "trained ln_1 of encoder 1=--swap encoder.layers.0.ln_1=trained" \
      --variant "trained pos. embedding=--swap pos_embedding=trained" \
      --variant "trained conv_proj + ln_1=--swap conv_proj=trained --swap encoder.layers.0.ln_1=trained" \
      --variant "trained encoder 1=--swap encoder.layers.0=trained" \
      --variant "fully trained=$ALL_VIT" \
      --variant "trained weights (check)=--weights trained" \
      --quiet --out $RUNS/fmnist_swaps_$i
    cp $RUNS/fmnist_swaps_$i/grid.png docs/fmnist_swaps_$i.png
    cp $RUNS/fmnist_swaps_$i/grid.md docs/fmnist_swaps_$i.md
  done
}

depth() {
  "${VITREP[@]}" grid --model weights/fmnist_vit --weights untrained --image "${IMAGES[0]}" --layers 0,1,2,3,4 \
    --variant "untrained=" --variant "trained=$ALL_VIT" --quiet --out $RUNS/fmnist_depth_vit
  # the ResNet's gradients at 32² are small: the grid's learning rate (0.01 → 0.001) and 10 times it
  "${VITREP[@]}" grid --model weights/fmnist_resnet --weights untrained --image "${IMAGES[0]}" \
    --layers stem,layer1,layer2,layer3,layer4 \
    --variant "untrained=" --variant "trained=$ALL_RESNET" \
    --variant "untrained, lr ×10=--lr 0.1:0.01" --variant "trained, lr ×10=--lr 0.1:0.01 $ALL_RESNET" \
    --quiet --out $RUNS/fmnist_depth_resnet
  for m in vit resnet; do
    cp $RUNS/fmnist_depth_$m/grid.png docs/fmnist_depth_$m.png
    cp $RUNS/fmnist_depth_$m/grid.md docs/fmnist_depth_$m.md
  done
}

filters() {
  for m in vit resnet; do
    "${VITREP[@]}" filters --model weights/fmnist_$m --weights trained --compare untrained --scale 8 --out $RUNS/fmnist_filters_$m
    cp $RUNS/fmnist_filters_$m/filters.png docs/fmnist_filters_$m.png
  done
  "${EVAL[@]}" patterns --out docs/fmnist_patterns.json
}

report() {
  "${EVAL[@]}" report --out docs/fmnist_tables.md
}

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(accuracy generate swaps depth filters report)
for s in "${steps[@]}"; do
  case "$s" in
    accuracy | generate | swaps | depth | filters | report) "$s" ;;
    *) echo "unknown step \"$s\": expected accuracy, generate, swaps, depth, filters or report" >&2; exit 2 ;;
  esac
done
