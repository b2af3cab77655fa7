#!/usr/bin/env python3
"""Train a small ViT and a small MLP-mixer, each with and without residual connections (the essay's
claim residual_training: without residuals a ViT "fails to learn even" CIFAR-10, a mixer "has only a
limited decrease in accuracy").

The four models, all at tools/train_fmnist.py's VIT_ARCH size (patch 4, 4 blocks, width 64, 32² input):
- vit: torchvision's VisionTransformer (4 heads, MLP 128), as train_fmnist.py trains it;
- vit_no_residual: the same with both residual additions of every encoder block removed
  (x = attn(ln_1(x)); x = mlp(ln_2(x))); class token, position embedding and final norm kept;
- mixer: timm's MlpMixer (tools/vitrep_convert/mixer_ref.py's RefMixer: token-mixing MLP 32 = width/2,
  timm's ratio, channel MLP 128 = the ViT's, layer norms, average pool, timm's init);
- mixer_no_residual: the same with both residual additions of every block removed.
With and without residuals share their initial weights (the same seed, the same construction).

Training is train_fmnist.py's (its `fit`): the same seed, epochs, batch 128, AdamW lr 2e-3 weight decay
0.05 with a one-epoch warm-up then cosine, random crop (pad 2) + flip, for all four. Data: Fashion-MNIST
(Debian's idx files, padded to 32², 3 channels, as train_fmnist.py reads them) or CIFAR-10
(torchvision.datasets.CIFAR10 into --cache, downloaded when missing). OUT/values.json holds each model's
test accuracy (a fraction) as <model>_accuracy, per-epoch accuracies and seconds; OUT/training_log.md a
table.

    /usr/bin/python3 tools/train_residual.py --data fmnist --out out/residual
    /usr/bin/python3 tools/train_residual.py --data cifar10 --cache out/cifar10 --out out/residual_cifar
    /usr/bin/python3 tools/train_residual.py --limit 1024 --test-limit 1000 --epochs 1 --out /tmp/res   # quick
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import train_fmnist as tf  # noqa: E402  (data, augmentation, optimizer and loop: train_fmnist.fit)
from vitrep_convert.mixer_ref import TOKEN_FIRST, RefMixer  # noqa: E402

MODELS = ("vit", "vit_no_residual", "mixer", "mixer_no_residual")
MIXER_ARCH = dict(patch=tf.VIT_ARCH["patch"], layers=tf.VIT_ARCH["layers"], hidden=tf.VIT_ARCH["hidden"],
                  tokens_mlp=tf.VIT_ARCH["hidden"] // 2, channels_mlp=tf.VIT_ARCH["mlp"])
OPTIM = dict(lr=tf.DEFAULTS["vit"]["lr"], wd=tf.DEFAULTS["vit"]["wd"])
DATASETS = ("fmnist", "cifar10")


class PlainEncoderBlock(nn.Module):
    """A torchvision EncoderBlock without its two residual additions: mlp(ln_2(attn(ln_1(x))))."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.block
        h = b.ln_1(x)
        h, _ = b.self_attention(query=h, key=h, value=h, need_weights=False)
        h = b.dropout(h)
        return b.mlp(b.ln_2(h))


class PlainMixerBlock(nn.Module):
    """A timm MixerBlock (RefMixerBlock) without its two residual additions."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block.channel_part(self.block.token_part(x, True, True, False), True, True, False)


def make_model(name: str, classes: int) -> nn.Module:
    """One of MODELS, freshly initialized from torch's global generator."""
    if name.startswith("vit"):
        from torchvision.models.vision_transformer import VisionTransformer
        a = tf.VIT_ARCH
        model = VisionTransformer(image_size=32, patch_size=a["patch"], num_layers=a["layers"],
                                  num_heads=a["heads"], hidden_dim=a["hidden"], mlp_dim=a["mlp"],
                                  num_classes=classes)
        if name == "vit_no_residual":
            layers = model.encoder.layers
            for key in list(layers._modules):
                layers._modules[key] = PlainEncoderBlock(layers._modules[key])
        return model
    a = MIXER_ARCH
    model = RefMixer(dict(hidden_dim=a["hidden"], patch_size=a["patch"], image_size=32, num_layers=a["layers"],
                          tokens_mlp_dim=a["tokens_mlp"], channels_mlp_dim=a["channels_mlp"],
                          num_classes=classes, order=TOKEN_FIRST))
    if name == "mixer_no_residual":
        model.blocks = nn.ModuleList([PlainMixerBlock(b) for b in model.blocks])
    return model


def load_fmnist(root: str) -> dict:
    xtr, ytr = tf.load_split(root, "train")
    xte, yte = tf.load_split(root, "t10k")
    return tf.data_dict(tf.to_input(xtr), torch.from_numpy(ytr), tf.to_input(xte), torch.from_numpy(yte))


def load_cifar10(cache: str) -> dict:
    """CIFAR-10 from cache (torchvision's cifar-10-batches-py), downloaded there when missing."""
    from torchvision.datasets import CIFAR10

    def split(train: bool):
        ds = CIFAR10(root=cache, train=train, download=True)
        x = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)).astype(np.float32) / 255.0)
        return x, torch.tensor(ds.targets, dtype=torch.int64)

    xtr, ytr = split(True)
    xte, yte = split(False)
    return tf.data_dict(xtr, ytr, xte, yte)


def write_atomic(path: str, text: str) -> None:
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def values(results: dict, a: argparse.Namespace, data: dict) -> dict:
    out = {f"{name}_accuracy": r["rows"][-1]["test_accuracy"] for name, r in results.items()}
    out.update(data=a.data, epochs=a.epochs, seed=a.seed, batch=a.batch, lr=OPTIM["lr"], weight_decay=OPTIM["wd"],
               train_images=len(data["xtr"]), test_images=len(data["xte"]), threads=a.threads,
               torch=torch.__version__,
               seconds={name: sum(row["seconds"] for row in r["rows"]) for name, r in results.items()},
               params={name: r["params"] for name, r in results.items()},
               per_epoch={name: [row["test_accuracy"] for row in r["rows"]] for name, r in results.items()})
    return out


def log_text(v: dict, cmd: str) -> str:
    lines = [
        "# Training with and without residual connections",
        "",
        f"Made by `{cmd}`.",
        "",
        f"- data {v['data']}: {v['train_images']:,} training images, {v['test_images']:,} test images",
        f"- seed {v['seed']}, {v['epochs']} epochs, batch {v['batch']}, AdamW lr {v['lr']} weight decay "
        f"{v['weight_decay']}, 1 warm-up epoch then cosine; random crop (pad 2) + horizontal flip; the same for all",
        f"- ViT: torchvision VisionTransformer {tf.arch_text(tf.VIT_ARCH)}; mixer: timm MlpMixer "
        f"{','.join(f'{k}={x}' for k, x in MIXER_ARCH.items())}; no residual: both additions of every block removed",
        f"- torch {v['torch']}, {v['threads']} threads; seconds are wall time on a machine shared with other jobs",
        "",
        "| model | parameters | test accuracy | per epoch | seconds |",
        "| ----- | ---------- | ------------- | --------- | ------- |",
    ]
    for name in v["per_epoch"]:
        per = ", ".join(f"{100 * x:.2f}%" for x in v["per_epoch"][name])
        lines.append(f"| {name} | {v['params'][name]:,} | {100 * v[name + '_accuracy']:.2f}% | {per} | "
                     f"{v['seconds'][name]:.0f} |")
    return "\n".join(lines) + "\n"


def parse(argv) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder for values.json and training_log.md")
    ap.add_argument("--data", choices=DATASETS, default="fmnist")
    ap.add_argument("--fmnist", default=tf.DATA, help=f"folder of Fashion-MNIST's idx .gz files (default {tf.DATA})")
    ap.add_argument("--cache", default="out/cifar10", help="CIFAR-10's folder (default out/cifar10)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--limit", type=int, help="train on the first LIMIT training images only")
    ap.add_argument("--test-limit", type=int, help="test on the first TEST_LIMIT test images only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    a = ap.parse_args(argv)
    for flag in ("epochs", "limit", "test_limit", "batch", "threads"):
        value = getattr(a, flag)
        if value is not None and value <= 0:
            ap.error(f"--{flag.replace('_', '-')} {value}: expected a positive integer")
    if a.data == "fmnist" and not os.path.exists(os.path.join(a.fmnist, "t10k-labels-idx1-ubyte.gz")):
        ap.error(f"--fmnist {a.fmnist!r}: no Fashion-MNIST idx files there (apt-get install dataset-fashion-mnist)")
    return a


def main(argv=None) -> int:
    a = parse(argv)
    torch.set_num_threads(a.threads)
    if a.data == "fmnist":
        data = load_fmnist(a.fmnist)
    else:
        try:
            data = load_cifar10(a.cache)
        except (OSError, RuntimeError) as err:
            print(f"error: --cache {a.cache!r}: CIFAR-10 neither there nor downloadable: {err}", file=sys.stderr)
            return 1
    # mean/std stay the full training set's
    data = dict(data, xtr=data["xtr"][:a.limit], ytr=data["ytr"][:a.limit], xte=data["xte"][:a.test_limit],
                yte=data["yte"][:a.test_limit])
    os.makedirs(a.out, exist_ok=True)
    cmd = "/usr/bin/python3 tools/train_residual.py " + " ".join(argv if argv is not None else sys.argv[1:])
    results = {}
    for name in MODELS:
        torch.manual_seed(a.seed)
        model = make_model(name, 10)
        t0 = time.time()
        rows = tf.fit(model, name, a.epochs, OPTIM["lr"], OPTIM["wd"], a.seed, a.batch, data)
        results[name] = dict(rows=rows, params=sum(p.numel() for p in model.parameters()))
        print(f"{name}: test accuracy {rows[-1]['test_accuracy']:.4f} after {a.epochs} epochs, "
              f"{time.time() - t0:.0f} s", file=sys.stderr, flush=True)
        # the log grows model by model; values.json is written once all four are trained
        write_atomic(os.path.join(a.out, "training_log.md"), log_text(values(results, a, data), cmd))
    v = values(results, a, data)
    write_atomic(os.path.join(a.out, "values.json"), json.dumps(v, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
