#!/usr/bin/env python3
"""Train a small torchvision ViT and a small torchvision-style ResNet on Fashion-MNIST.

Fashion-MNIST (Debian: `apt-get install dataset-fashion-mnist`, idx files under
/usr/share/datasets/fashion-mnist/) is padded from 28² to 32² with zeros and repeated to
3 channels, so both models take the [1,3,32,32] input every vitrep model takes. The
normalization mean/std are the padded training set's (one value for all three channels)
and are recorded next to the checkpoint for the converter's --mean/--std.

Training is seeded (torch) and single-process (--threads, default 2); augmentation is a
random 32² crop of the image padded by 2 more pixels and a horizontal flip; AdamW with a
one-epoch linear warm-up and a cosine schedule. Each model's test accuracy after every
epoch goes to OUT/<model>/training_log.md and its final state dict to OUT/<model>.pth.

    /usr/bin/python3 tools/train_fmnist.py --out out/fmnist            # both models
    /usr/bin/python3 tools/train_fmnist.py --out out/fmnist --model vit --epochs 10 --threads 2
    /usr/bin/python3 tools/train_fmnist.py --label weights/fmnist_vit weights/fmnist_resnet   # class names
"""
import argparse
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

DATA = "/usr/share/datasets/fashion-mnist"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot"]
# The architectures, in the converter's --arch syntax (tools/convert.py custom / resnet_custom).
VIT_ARCH = dict(patch=4, layers=4, heads=4, hidden=64, mlp=128)
RESNET_ARCH = dict(layers="1:1:1:1", planes="8:16:32:64", stem=16, block="basic")
DEFAULTS = {"vit": dict(epochs=15, lr=2e-3, wd=0.05), "resnet": dict(epochs=15, lr=4e-3, wd=0.05)}


def arch_text(arch: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in arch.items()) + ",classes=10"


def read_idx(path: str) -> np.ndarray:
    """An idx file (gzip) as a numpy array (uint8 data, big-endian dims)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_split(root: str, split: str):
    """(images uint8 [N,28,28], labels int64 [N]) of 'train' or 't10k'."""
    x = read_idx(os.path.join(root, f"{split}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(root, f"{split}-labels-idx1-ubyte.gz")).astype(np.int64)
    return x, y


def to_input(images: np.ndarray) -> torch.Tensor:
    """uint8 [N,28,28] → float [N,3,32,32] in [0,1]: zero-padded by 2, repeated to 3 channels."""
    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    x = F.pad(x, (2, 2, 2, 2))
    return x[:, None].repeat(1, 3, 1, 1)


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A random 32² crop of x padded by 2 (zeros), and a horizontal flip with probability 1/2."""
    n = x.shape[0]
    padded = F.pad(x, (2, 2, 2, 2))
    dy = torch.randint(0, 5, (n,), generator=gen)
    dx = torch.randint(0, 5, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(32)[None, :])[:, None, :, None].expand(n, 3, 32, 36)
    out = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(32)[None, :])[:, None, None, :].expand(n, 3, 32, 32)
    out = out.gather(3, cols)
    flip = torch.rand(n, generator=gen) < 0.5
    out[flip] = out[flip].flip(3)
    return out


def make_model(kind: str) -> nn.Module:
    if kind == "vit":
        from torchvision.models.vision_transformer import VisionTransformer
        a = VIT_ARCH
        return VisionTransformer(image_size=32, patch_size=a["patch"], num_layers=a["layers"],
                                 num_heads=a["heads"], hidden_dim=a["hidden"], mlp_dim=a["mlp"],
                                 num_classes=10)
    from vitrep_convert.resnet import custom_resnet
    a = RESNET_ARCH
    return custom_resnet(a["block"], [int(v) for v in a["layers"].split(":")],
                         [int(v) for v in a["planes"].split(":")], a["stem"], 10)


def data_dict(xtr: torch.Tensor, ytr: torch.Tensor, xte: torch.Tensor, yte: torch.Tensor) -> dict:
    """The data fit takes: float images [N,3,32,32] in [0,1] and int64 labels of both splits, and the
    normalization mean/std (one value for all channels: the training images')."""
    return dict(xtr=xtr, ytr=ytr, xte=xte, yte=yte, mean=xtr.mean().item(), std=xtr.std().item())


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, mean: float, std: float) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(x), 500):
        correct += (model((x[i:i + 500] - mean) / std).argmax(1) == y[i:i + 500]).sum().item()
    return correct / len(x)


def train(kind: str, out: str, epochs: int, lr: float, wd: float, seed: int, batch: int, data: dict) -> dict:
    torch.manual_seed(seed)
    model = make_model(kind)
    rows = fit(model, kind, epochs, lr, wd, seed, batch, data)
    os.makedirs(out, exist_ok=True)
    model.eval()
    torch.save(model.state_dict(), os.path.join(out, f"{kind}.pth"))
    return dict(rows=rows, epochs=epochs, lr=lr, wd=wd, seed=seed, batch=batch,
                params=sum(p.numel() for p in model.parameters()))


def fit(model: nn.Module, name: str, epochs: int, lr: float, wd: float, seed: int, batch: int,
        data: dict) -> list:
    """Trains model in place (AdamW, one warm-up epoch then cosine; augment's crop and flip; order and
    augmentation drawn from a generator seeded with seed) and returns one row per epoch: epoch, mean
    train loss, test accuracy, seconds. Progress lines, prefixed with name, go to stderr."""
    gen = torch.Generator().manual_seed(seed)
    xtr, ytr, xte, yte, mean, std = (data[k] for k in ("xtr", "ytr", "xte", "yte", "mean", "std"))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    steps_per_epoch = math.ceil(len(xtr) / batch)
    total, warm = epochs * steps_per_epoch, steps_per_epoch

    def lr_at(step: int) -> float:
        if step < warm:
            return lr * (step + 1) / warm
        return lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    rows, step = [], 0
    for epoch in range(1, epochs + 1):
        model.train()
        t0, loss_sum = time.time(), 0.0
        order = torch.randperm(len(xtr), generator=gen)
        for i in range(0, len(xtr), batch):
            idx = order[i:i + batch]
            xb = (augment(xtr[idx], gen) - mean) / std
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            loss = F.cross_entropy(model(xb), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            step += 1
            if step % 100 == 0:
                print(f"{name} step {step}/{total}: loss {loss.item():.4f}, {time.time() - t0:.0f} s into epoch {epoch}",
                      file=sys.stderr, flush=True)
        acc = accuracy(model, xte, yte, mean, std)
        rows.append(dict(epoch=epoch, loss=loss_sum / len(xtr), test_accuracy=acc, seconds=time.time() - t0))
        print(f"{name} epoch {epoch}/{epochs}: train loss {rows[-1]['loss']:.4f}, test accuracy {acc:.4f}, "
              f"{rows[-1]['seconds']:.0f} s", file=sys.stderr, flush=True)
    return rows


def write_log(path: str, kind: str, result: dict, mean: float, std: float) -> None:
    arch = arch_text(VIT_ARCH if kind == "vit" else RESNET_ARCH)
    conv = "custom --image-size 32" if kind == "vit" else "resnet_custom --image-size 32"
    lines = [
        f"# Fashion-MNIST {'ViT' if kind == 'vit' else 'ResNet'}: training log",
        "",
        "Made by `/usr/bin/python3 tools/train_fmnist.py` (see `tools/fmnist_build.sh`); "
        f"converter: `tools/convert.py {conv} --arch {arch}`.",
        "",
        f"- {result['params']:,} parameters; input 28² padded to 32², repeated to 3 channels; "
        f"normalization mean {mean:.6f}, std {std:.6f} (the padded training set's)",
        f"- seed {result['seed']}, {result['epochs']} epochs, batch {result['batch']}, AdamW lr {result['lr']} "
        f"weight decay {result['wd']}, 1 warm-up epoch then cosine; random crop (pad 2) + horizontal flip",
        f"- torch {torch.__version__}, torch threads: {torch.get_num_threads()}; seconds are wall time on a 2-core "
        "machine shared with other jobs",
        "",
        "| epoch | train loss | test accuracy (10,000 images) | seconds |",
        "| ----- | ---------- | ----------------------------- | ------- |",
    ]
    lines += [f"| {r['epoch']} | {r['loss']:.4f} | {100 * r['test_accuracy']:.2f}% | {r['seconds']:.0f} |"
              for r in result["rows"]]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)


def label(folder: str) -> None:
    """Writes the 10 class names into FOLDER/manifest.json (the converter leaves categories null
    for a 10-class checkpoint)."""
    path = os.path.join(folder, "manifest.json")
    with open(path) as f:
        manifest = json.load(f)
    if manifest.get("num_classes") != len(CLASSES):
        raise SystemExit(f"error: {path!r} has {manifest.get('num_classes')} classes: expected {len(CLASSES)}")
    manifest["categories"] = CLASSES
    from vitrep_convert.manifest import dump_json
    with open(path + ".tmp", "w") as f:
        f.write(dump_json(manifest) + "\n")
    os.replace(path + ".tmp", path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="folder for the checkpoints (<model>.pth) and stats.json")
    ap.add_argument("--label", nargs="+", metavar="DIR",
                    help="instead of training: write the class names into converted model folders' manifests")
    ap.add_argument("--log-dir", default="weights", help="training logs go to LOG_DIR/fmnist_<model>/ (default weights)")
    ap.add_argument("--model", choices=["vit", "resnet", "both"], default="both")
    ap.add_argument("--epochs", type=int, help="default: vit 15, resnet 15")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--data", default=DATA, help=f"folder of the idx .gz files (default {DATA})")
    a = ap.parse_args(argv)
    if a.label:
        for folder in a.label:
            label(folder)
        return 0
    if not a.out:
        ap.error("--out DIR is required (or --label DIR...)")
    if a.epochs is not None and a.epochs <= 0:
        ap.error(f"--epochs {a.epochs}: expected a positive integer")
    if not os.path.exists(os.path.join(a.data, "t10k-labels-idx1-ubyte.gz")):
        ap.error(f"--data {a.data!r}: no Fashion-MNIST idx files there (apt-get install dataset-fashion-mnist)")
    if a.threads <= 0:
        ap.error(f"--threads {a.threads}: expected a positive integer")
    torch.set_num_threads(a.threads)
    xtr, ytr = load_split(a.data, "train")
    xte, yte = load_split(a.data, "t10k")
    data = data_dict(to_input(xtr), torch.from_numpy(ytr), to_input(xte), torch.from_numpy(yte))
    mean, std = data["mean"], data["std"]
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "stats.json"), "w") as f:
        json.dump({"mean": mean, "std": std, "classes": CLASSES}, f)
    for kind in (["vit", "resnet"] if a.model == "both" else [a.model]):
        d = DEFAULTS[kind]
        result = train(kind, a.out, a.epochs or d["epochs"], d["lr"], d["wd"], a.seed, a.batch, data)
        write_log(os.path.join(a.log_dir, f"fmnist_{kind}", "training_log.md"), kind, result, mean, std)
    return 0


if __name__ == "__main__":
    sys.exit(main())
