"""Convert a torchvision Vision Transformer, a timm MLP-Mixer, a feed-forward-only ViT
(Melas-Kyriazi) or a torchvision ResNet into per-block ONNX graphs for vitrep.

Every piece of the model (input processing, each block, the head) becomes two graphs: a
forward graph (x -> y, plus the activations the backward pass needs) and a
vector-Jacobian-product graph (dy + saved activations -> dx). The backward passes are
written by hand in plain torch ops and verified against torch.autograd before anything
is written (`--check` prints the errors).

Weights are kept apart from graphs: graphs reference their parameters as ONNX external
data (location "__weights__", offsets listed in the manifest) and the weights themselves
go to one safetensors file per weight set, with the source model's state-dict keys. The
runtime packs a weight set into each graph's external-data buffer, so any tensor can be
swapped without touching a graph.

    python3 tools/convert.py vit_b_32 --weights untrained --seed 0 --out weights/vit_b_32
    python3 tools/convert.py vit_b_32 --weights IMAGENET1K_V1 --out weights/vit_b_32
    python3 tools/convert.py vit_b_32 --weights ckpt.pth --out /tmp/vit_b_32 --check
    python3 tools/convert.py vit_b_32 --weights vit_b_32-d86f8d99.pth --out weights/vit_b_32   # torchvision's file
    python3 tools/convert.py custom --arch patch=8,layers=2,heads=2,hidden=16,mlp=32 --image-size 32 --out /tmp/t
    python3 tools/convert.py mixer_b16_224 --weights jx_mixer_b16_224-76587d61.pth --out weights/mixer_b16_224
    python3 tools/convert.py mixer --image-size 224 --out /tmp/mixer_cf \\
        --arch patch=16,hidden=1024,tokens_mlp=512,channels_mlp=4096,layers=8,order=channel_first
    python3 tools/convert.py linear_tiny --weights linear_tiny_state_dict.pth --out weights/linear_tiny
    python3 tools/convert.py resnet50 --weights IMAGENET1K_V2 --out weights/resnet50
    python3 tools/convert.py resnet_custom --arch layers=2:1:1:1,planes=4:8:8:16,stem=8 --image-size 64 \\
        --weights ckpt.pth --out /tmp/r
    python3 tools/convert.py --list

The attentionless models' graphs take the ViT's switches (see --list), so the runtime chains
them unchanged.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from typing import List, Optional

from . import registry
from .mixer_ref import CHANNEL_FIRST, TOKEN_FIRST
from .weights import DownloadError


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="convert.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", help="one of " + ", ".join(registry.MODELS) + " (custom, mixer, ffvit "
                    "and resnet_custom with --arch); --list describes them")
    ap.add_argument("--arch", metavar="K=V,...",
                    help="custom untrained architecture: custom (ViT) patch=8,layers=2,heads=2,hidden=16,mlp=32"
                         "[,classes=10]; mixer patch=8,layers=2,hidden=16,tokens_mlp=8,channels_mlp=32"
                         f"[,classes=10][,order={TOKEN_FIRST}|{CHANNEL_FIRST}]; ffvit patch=8,layers=2,hidden=16"
                         "[,channels_mlp=64][,tokens_mlp=68][,classes=10][,order=...]; presets take order= and "
                         "classes=; resnet_custom layers=A:B:C:D,planes=A:B:C:D,stem=S[,classes=N]"
                         "[,block=bottleneck|basic]")
    ap.add_argument("--weights", default="untrained",
                    help="'untrained', a torchvision weights name (e.g. IMAGENET1K_V1) or a checkpoint file")
    ap.add_argument("--seed", type=int, default=0, help="seed for untrained weights (default 0)")
    ap.add_argument("--image-size", type=int, help="image size for untrained models (default 224)")
    ap.add_argument("--mean", metavar="R,G,B", help="input normalization mean recorded in the manifest (default: "
                    "the weights' own; timm mixers 0.5)")
    ap.add_argument("--std", metavar="R,G,B", help="input normalization std recorded in the manifest")
    ap.add_argument("--out", help="output folder")
    ap.add_argument("--name", help="weight-set name in the manifest (default: the weights' name; a checkpoint file's "
                    "name without extension, but IMAGENET1K_V1 etc. for torchvision's own downloaded file)")
    ap.add_argument("--check", action="store_true", help="print errors against torch.autograd (always verified)")
    ap.add_argument("--no-verify", action="store_true", help="skip verification (not recommended)")
    ap.add_argument("--check-layers", type=int, default=10**9, metavar="K",
                    help="verify only the first K blocks one by one (default: all; the chained whole-model check "
                         "always runs)")
    ap.add_argument("--graphs-only", action="store_true", help="write graphs and manifest but no weight file")
    ap.add_argument("--list", action="store_true", help="list the models this converter knows")
    return ap


def parse_triple(ap, flag: str, text: Optional[str]) -> Optional[List[float]]:
    """--mean / --std: three comma-separated numbers (std positive), or None when not given."""
    if text is None:
        return None
    try:
        v = [float(t) for t in text.split(",")]
    except ValueError:
        v = []
    if len(v) != 3 or not all(math.isfinite(t) for t in v) or (flag == "--std" and min(v) <= 0):
        ap.error(f"{flag} {text!r}: expected three comma-separated numbers (R,G,B)"
                 + (", all positive" if flag == "--std" else ""))
    return v


def main(argv=None) -> int:
    """The command line: parses argv, builds the model, converts it (exit status 2 for usage errors)."""
    ap = _parser()
    a = ap.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)  # torch.onnx's constant-folding notes
    warnings.filterwarnings("ignore", category=FutureWarning)  # torch 1.13 on g.op in symbolic functions
    if a.list:
        print("\n".join(registry.listing()))
        return 0
    fam = registry.family(a.model)
    if fam is None:
        what = "a model name is required" if a.model is None else f"unknown model {a.model!r}"
        ap.error(f"{what}: expected one of {', '.join(registry.MODELS)} (--list describes them)")
    mean, std = parse_triple(ap, "--mean", a.mean), parse_triple(ap, "--std", a.std)
    try:
        model, meta, size, convert, extra = fam.prepare(ap, a)
    except DownloadError as err:
        print(err.message(a.out), file=sys.stderr)
        return 1
    meta["mean"], meta["std"] = mean or meta["mean"], std or meta["std"]
    name = a.name or (f"untrained-seed{a.seed}" if a.weights == "untrained" else meta["weights"])
    convert(model, meta, a.model, a.out, check=not a.no_verify, write_weights=not a.graphs_only, weight_set=name,
            log=print if a.check else (lambda s: None), check_layers=a.check_layers, **extra)
    print(f"wrote {a.out}/manifest.json ({a.model}, image {size}, weights {name})", file=sys.stderr)
    return 0
