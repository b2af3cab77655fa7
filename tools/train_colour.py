#!/usr/bin/env python3
"""Train a small COLOUR, UNDERCOMPLETE torchvision ViT on crops of ten photographs.

The task needs no labels: "which of ten photographs does this crop come from". The crops keep
their colour (no colour jitter, no grey conversion), so the stem learns from natural photographs'
colour and spatial statistics. The stem is undercomplete like ViT-B/32's (3072 -> 768): a patch
of 3*8*8 = 192 values goes to a 64-wide token (3:1).

Data (all with terms that allow redistribution of derived files with attribution, see PHOTOS):
nine photographs from Debian's lomiri-wallpapers-16.04 package (/usr/share/backgrounds/,
CC-BY-4.0 and CC0-1.0 per /usr/share/doc/lomiri-wallpapers-16.04/copyright; the package's
CC-BY-SA and GPL images are left out) and the repository's public-domain rocket photograph
(tests/fixtures/images/rocket.jpg). The cat photograph (assets/chelsea.png) is NOT used, so
inversions of it see a photograph the model has never seen.

Each photograph is resized (Lanczos) so its shorter side is 160 px and split along its longer
side: the first 70% is the training region, the last 30% the held-out region. A crop is a
square of side 24..48 px (uniform), placed uniformly inside one region, resampled to 32x32
(bilinear) and flipped left-right with probability 1/2. Held-out accuracy is measured on a
fixed set of crops from the held-out regions (their own generator seed).

Normalization mean/std are per channel, over training crops (a fixed sample), and are
recorded next to the checkpoint for the converter's --mean/--std.

    /usr/bin/python3 tools/train_colour.py --out out/colour              # train (see tools/colour_build.sh)
    /usr/bin/python3 tools/train_colour.py --label weights/colour_vit    # categories + training record
"""
import argparse
import hashlib
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

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKGROUNDS = "/usr/share/backgrounds"  # lomiri-wallpapers-16.04's folder
PACKAGE = "lomiri-wallpapers-16.04"
# (category, file, where, author, licence, sha256 of the file). "where" is "backgrounds" (the
# Debian package's folder, --photos) or "repo" (a path in this repository).
PHOTOS = [
    ("fig in a red bowl", "Picture_0B_by_freespace.jpg", "backgrounds", 'Trevor "Freespace"', "CC-BY-4.0",
     "c8c0ab18e48d9e0419fe42881112137f3afafc27dfddc29ec3a6d54c56d225ad"),
    ("paint brushes", "Picture_1A_by_freespace.jpg", "backgrounds", 'Trevor "Freespace"', "CC-BY-4.0",
     "89e86af38d04daaef975665dc2127e9fa76f0fd68f4eea105a2d0ae3390b010b"),
    ("drum and wine in a room", "Wine_by_Jakkub_Mede.jpg", "backgrounds", "Jakub Mede", "CC-BY-4.0",
     "d2e96e6d4da40dd804b3d0ce295e94de04a2d7d9b6785d42cd9d92ba58bced74"),
    ("autumn meadow below a ridge", "aitzgorri_by_Aitzol_Berasategi.jpg", "backgrounds", "Aitzol Berasategi",
     "CC-BY-4.0", "66268e7b48f8854d36a28765fac6e23ec1aee251daa6da1f64715f201020ad36"),
    ("two dogs at a window", "friends_by_Aitzol_Berasategi.jpg", "backgrounds", "Aitzol Berasategi", "CC-BY-4.0",
     "cc40e313c74e421edffe3403def413c16878ce14661cce7ec5915baeab35538d"),
    ("forest stream", "life_by_Aitzol_Berasategi.jpg", "backgrounds", "Aitzol Berasategi", "CC-BY-4.0",
     "4c119350ead80201fe256850c3d316309ddfb4bdf10b235ce982dcde0c667c05"),
    ("mountain path, Picos de Europa", "picosdeeuropa_by_Aitzol_Berasategi.jpg", "backgrounds",
     "Aitzol Berasategi", "CC-BY-4.0", "414d0072b2f6f2c555deafeaef6e45c4fed6fa9ad26eba6560ca8803959cf97a"),
    ("dandelion seed heads", "seeding_by_Clements_Engelhardt.jpg", "backgrounds", "Clemens Engelhardt", "CC0-1.0",
     "a5634d1ab5e41a3568e92d4a894a500c92b891f9ff734e50bd224d6e185a605f"),
    ("sunset on a hilltop", "sunset_by_Aitzol_Berasategi.jpg", "backgrounds", "Aitzol Berasategi", "CC-BY-4.0",
     "474dab6a4b9f94dc76c29dfe30e9f5db4af0fd2e33fe5d695f8152b371efca18"),
    ("rocket on its launch pad", "tests/fixtures/images/rocket.jpg", "repo", "SpaceX", "public domain",
     "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c"),
]
CLASSES = [p[0] for p in PHOTOS]
SIDE = 160  # shorter side of each photograph after resizing
HELD_OUT = 0.3  # the last 30% of the longer side
CROP = (24, 48)  # crop side in resized pixels, before resampling to IMAGE
IMAGE = 32
# The architecture, in the converter's --arch syntax (tools/convert.py custom).
ARCH = dict(patch=8, layers=4, heads=4, hidden=64, mlp=256)
DEFAULTS = dict(epochs=15, crops=10000, lr=2e-3, wd=0.05, batch=128, test_per_class=100)
TEST_SEED = 1_000_003  # generator seed of the held-out crop set (training uses --seed)
STATS_SEED = 2_000_003  # generator seed of the crops the normalization is measured on


def arch_text(arch: dict = ARCH) -> str:
    return ",".join(f"{k}={v}" for k, v in arch.items()) + f",classes={len(CLASSES)}"


def photo_path(entry: tuple, photos: str) -> str:
    return os.path.join(photos if entry[2] == "backgrounds" else REPO, entry[1])


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def load_photos(photos: str) -> list:
    """Each photograph as float [3,H,W] in [0,1], its shorter side SIDE px (Lanczos)."""
    from PIL import Image

    out = []
    for entry in PHOTOS:
        path = photo_path(entry, photos)
        if not os.path.isfile(path):
            hint = f"apt-get install {PACKAGE}, or --photos DIR" if entry[2] == "backgrounds" else "a repository file"
            raise SystemExit(f"error: photograph {path!r} is missing: expected {hint}")
        if sha256(path) != entry[5]:
            raise SystemExit(f"error: photograph {path!r} is not the one the committed model was trained on "
                             f"(sha256 {sha256(path)}): expected sha256 {entry[5]} ({PACKAGE} 20.04.0-2)")
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            s = SIDE / min(w, h)
            im = im.resize((round(w * s), round(h * s)), Image.LANCZOS)
            a = np.asarray(im, dtype=np.uint8)
        out.append(torch.from_numpy(a.astype(np.float32) / 255.0).permute(2, 0, 1).contiguous())
    return out


def region(photo: torch.Tensor, held_out: bool) -> tuple:
    """(y0, x0, h, w) of the training region (first 70% of the longer side) or the held-out one."""
    _, h, w = photo.shape
    if w >= h:
        cut = round(w * (1 - HELD_OUT))
        return (0, cut, h, w - cut) if held_out else (0, 0, h, cut)
    cut = round(h * (1 - HELD_OUT))
    return (cut, 0, h - cut, w) if held_out else (0, 0, cut, w)


def crops(photo: torch.Tensor, n: int, gen: torch.Generator, held_out: bool) -> torch.Tensor:
    """n random crops [n,3,IMAGE,IMAGE] of one photograph's region: side CROP[0]..CROP[1] px,
    placed uniformly inside the region, bilinear-resampled, flipped left-right with p = 1/2."""
    _, H, W = photo.shape
    y0, x0, h, w = region(photo, held_out)
    side = CROP[0] + torch.rand(n, generator=gen) * (CROP[1] - CROP[0])
    cy = y0 + side / 2 + torch.rand(n, generator=gen) * (h - side)
    cx = x0 + side / 2 + torch.rand(n, generator=gen) * (w - side)
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = flip * side / W  # align_corners=False: x_norm = (2 x + 1) / W - 1 over pixel centres
    theta[:, 0, 2] = 2 * cx / W - 1
    theta[:, 1, 1] = side / H
    theta[:, 1, 2] = 2 * cy / H - 1
    grid = F.affine_grid(theta, [n, 3, IMAGE, IMAGE], align_corners=False)
    return F.grid_sample(photo[None].expand(n, -1, -1, -1), grid, mode="bilinear", padding_mode="border",
                         align_corners=False)


def batch(photos: list, labels: torch.Tensor, gen: torch.Generator, held_out: bool) -> torch.Tensor:
    """Crops for the given labels (one crop each, in order)."""
    out = torch.empty(len(labels), 3, IMAGE, IMAGE)
    for k in range(len(photos)):
        idx = (labels == k).nonzero().flatten()
        if len(idx):
            out[idx] = crops(photos[k], len(idx), gen, held_out)
    return out


def held_out_set(photos: list, per_class: int) -> tuple:
    """The fixed held-out crops (TEST_SEED), quantized to uint8 like a PNG would hold them, and labels."""
    gen = torch.Generator().manual_seed(TEST_SEED)
    y = torch.arange(len(photos)).repeat_interleave(per_class)
    x = batch(photos, y, gen, held_out=True)
    return (x * 255).round().clamp(0, 255).to(torch.uint8), y


def make_model() -> nn.Module:
    from torchvision.models.vision_transformer import VisionTransformer
    a = ARCH
    return VisionTransformer(image_size=IMAGE, patch_size=a["patch"], num_layers=a["layers"], num_heads=a["heads"],
                             hidden_dim=a["hidden"], mlp_dim=a["mlp"], num_classes=len(CLASSES))


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Logits of uint8 or [0,1] images [N,3,IMAGE,IMAGE]."""
    model.eval()
    x = x.float() / 255 if x.dtype == torch.uint8 else x
    return torch.cat([model((x[i:i + 500] - mean) / std) for i in range(0, len(x), 500)])


def train(out: str, a: argparse.Namespace, photos: list, mean: torch.Tensor, std: torch.Tensor) -> dict:
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    model = make_model()
    xte, yte = held_out_set(photos, a.test_per_class)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.wd)
    steps_per_epoch = math.ceil(a.crops / a.batch)
    total, warm = a.epochs * steps_per_epoch, steps_per_epoch

    def lr_at(step: int) -> float:
        if step < warm:
            return a.lr * (step + 1) / warm
        return a.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    rows, step, start, cpu = [], 0, time.time(), time.process_time()
    for epoch in range(1, a.epochs + 1):
        model.train()
        t0, loss_sum, seen = time.time(), 0.0, 0
        for _ in range(steps_per_epoch):
            n = min(a.batch, a.crops - seen)
            y = torch.randint(0, len(photos), (n,), generator=gen)
            xb = (batch(photos, y, gen, held_out=False) - mean) / std
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            loss = F.cross_entropy(model(xb), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * n
            seen += n
            step += 1
        acc = (predict(model, xte, mean, std).argmax(1) == yte).float().mean().item()
        rows.append(dict(epoch=epoch, loss=loss_sum / seen, test_accuracy=acc, seconds=time.time() - t0))
        print(f"epoch {epoch}/{a.epochs}: train loss {rows[-1]['loss']:.4f}, held-out accuracy {acc:.4f}, "
              f"{rows[-1]['seconds']:.0f} s", file=sys.stderr, flush=True)
    os.makedirs(out, exist_ok=True)
    model.eval()
    torch.save(model.state_dict(), os.path.join(out, "vit.pth"))
    return dict(rows=rows, seconds=time.time() - start, cpu_seconds=time.process_time() - cpu,
                params=sum(p.numel() for p in model.parameters()), test=len(yte))


def normalization(photos: list) -> tuple:
    """Per-channel mean and std of 20,000 training crops (STATS_SEED)."""
    gen = torch.Generator().manual_seed(STATS_SEED)
    x = batch(photos, torch.arange(len(photos)).repeat(2000), gen, held_out=False)
    return x.mean((0, 2, 3)), x.std((0, 2, 3))


def training_record(mean: list, std: list, s: dict) -> dict:
    """The manifest's "training" field: what the weights were trained on (data, not code)."""
    return {
        "data": f"crops of {len(PHOTOS)} colour photographs; class = the photograph a crop comes from",
        "channels": "colour",
        "script": "tools/train_colour.py",
        "photographs": [{"category": c, "file": f, "source": PACKAGE if w == "backgrounds" else "this repository",
                         "author": au, "license": lic, "sha256": sha} for c, f, w, au, lic, sha in PHOTOS],
        "crops": {"side": list(CROP), "resized_shorter_side": SIDE, "image_size": IMAGE, "flip": "left-right",
                  "colour_jitter": False},
        "held_out": {"region": f"last {round(100 * HELD_OUT)}% of each photograph's longer side",
                     "crops": s["test"], "seed": TEST_SEED},
        "accuracy": round(s["accuracy"], 4),
        "normalization": {"mean": mean, "std": std, "over": "20,000 training crops, per channel"},
        "seconds": {"wall": round(s["seconds"]), "cpu": round(s["cpu_seconds"]), "torch_threads": s["threads"],
                    "machine": "2 cores shared with other jobs"},
    }


def write_log(path: str, a: argparse.Namespace, result: dict, mean: list, std: list) -> None:
    lines = [
        "# Colour photograph ViT (undercomplete stem): training log",
        "",
        "Made by `/usr/bin/python3 tools/train_colour.py` (see `tools/colour_build.sh`); converter: "
        f"`tools/convert.py custom --image-size {IMAGE} --arch {arch_text()}`.",
        "",
        f"- {result['params']:,} parameters; stem 3·{ARCH['patch']}² = {3 * ARCH['patch'] ** 2} values per patch → "
        f"{ARCH['hidden']} (undercomplete, {3 * ARCH['patch'] ** 2 / ARCH['hidden']:.0f}:1; ViT-B/32: 3072 → 768, 4:1)",
        f"- task: which of {len(PHOTOS)} colour photographs a {IMAGE}×{IMAGE} crop comes from; photographs resized "
        f"to a shorter side of {SIDE} px; crops of side {CROP[0]}–{CROP[1]} px (uniform) resampled to {IMAGE}², "
        "left-right flips, colour kept",
        f"- held out: the last {round(100 * HELD_OUT)}% of each photograph's longer side; accuracy on "
        f"{result['test']:,} crops from there (seed {TEST_SEED}), none of whose pixels training saw",
        f"- normalization per channel (20,000 training crops): mean {', '.join(f'{v:.4f}' for v in mean)}; "
        f"std {', '.join(f'{v:.4f}' for v in std)}",
        f"- seed {a.seed}, {a.epochs} epochs of {a.crops:,} crops, batch {a.batch}, AdamW lr {a.lr} weight decay "
        f"{a.wd}, 1 warm-up epoch then cosine",
        f"- torch {torch.__version__}, torch threads: {torch.get_num_threads()}; seconds are wall time on a 2-core "
        f"machine shared with other jobs (several at once: alone it is faster); total {result['seconds'] / 60:.1f} "
        f"minutes wall, {result['cpu_seconds'] / 60:.1f} minutes of CPU time",
        "",
        "| epoch | train loss | held-out accuracy | seconds |",
        "| ----- | ---------- | ----------------- | ------- |",
    ]
    lines += [f"| {r['epoch']} | {r['loss']:.4f} | {100 * r['test_accuracy']:.2f}% | {r['seconds']:.0f} |"
              for r in result["rows"]]
    lines += [
        "", "## Why this data", "",
        "The stem and filter claims are about what training on natural photographs does to the patch "
        "embedding, so the data are colour photographs whose channels differ (Fashion-MNIST is grey). "
        "\"Which photograph does this crop come from\" needs no labels, and held-out regions make an honest "
        "held-out accuracy. The photographs are the ones Debian ships under terms that allow redistributing "
        "derived files (the trained weights, the test fixture's crops) from an MIT repository with "
        f"attribution: the CC-BY-4.0 and CC0 photographs of `{PACKAGE}` (its CC-BY-SA and GPL images, and the "
        "other desktop-background packages' GPL / CC-BY-SA images, are left out; its one CC-BY-4.0 "
        "image that is not a photograph, a colour gradient, too) and the repository's public-domain rocket. "
        "The cat (assets/chelsea.png, the default image of `invert`) is not trained on, so inverting it "
        "tests the stem on an unseen photograph.",
        "", "## Photographs", "", "| class | category | file | source | author | licence |",
        "| ----- | -------- | ---- | ------ | ------ | ------- |"]
    lines += [f"| {k} | {c} | {os.path.basename(f)} | {PACKAGE if w == 'backgrounds' else 'this repository'} | "
              f"{au} | {lic} |" for k, (c, f, w, au, lic, _) in enumerate(PHOTOS)]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)


def label(folder: str, stats: str) -> None:
    """Writes the class names and the "training" record into FOLDER/manifest.json."""
    path = os.path.join(folder, "manifest.json")
    with open(path) as f:
        manifest = json.load(f)
    if manifest.get("num_classes") != len(CLASSES):
        raise SystemExit(f"error: {path!r} has {manifest.get('num_classes')} classes: expected {len(CLASSES)}")
    with open(stats) as f:
        s = json.load(f)
    manifest["categories"] = CLASSES
    manifest["training"] = training_record(s["mean"], s["std"], s)
    from vitrep_convert.manifest import dump_json
    with open(path + ".tmp", "w") as f:
        f.write(dump_json(manifest) + "\n")
    os.replace(path + ".tmp", path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="folder for the checkpoint (vit.pth) and stats.json")
    ap.add_argument("--label", metavar="DIR", help="instead of training: write the categories and the training "
                    "record (from --out's stats.json) into a converted model folder's manifest")
    ap.add_argument("--log", default="weights/colour_vit/training_log.md", help="training log path")
    ap.add_argument("--photos", default=BACKGROUNDS, help=f"folder of {PACKAGE}'s photographs (default {BACKGROUNDS})")
    ap.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    ap.add_argument("--crops", type=int, default=DEFAULTS["crops"], help="training crops per epoch")
    ap.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    ap.add_argument("--wd", type=float, default=DEFAULTS["wd"])
    ap.add_argument("--batch", type=int, default=DEFAULTS["batch"])
    ap.add_argument("--test-per-class", type=int, default=DEFAULTS["test_per_class"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    a = ap.parse_args(argv)
    if a.label:
        if not a.out:
            ap.error("--label DIR needs --out DIR (the training folder with stats.json)")
        label(a.label, os.path.join(a.out, "stats.json"))
        return 0
    if not a.out:
        ap.error("--out DIR is required (or --label DIR --out DIR)")
    for name in ("epochs", "crops", "batch", "test_per_class", "threads"):
        if getattr(a, name) <= 0:
            ap.error(f"--{name.replace('_', '-')} {getattr(a, name)}: expected a positive integer")
    torch.set_num_threads(a.threads)
    photos = load_photos(a.photos)
    mean, std = normalization(photos)
    result = train(a.out, a, photos, mean[None, :, None, None], std[None, :, None, None])
    m, s = [round(v, 6) for v in mean.tolist()], [round(v, 6) for v in std.tolist()]
    with open(os.path.join(a.out, "stats.json"), "w") as f:
        json.dump({"mean": m, "std": s, "classes": CLASSES, "accuracy": result["rows"][-1]["test_accuracy"],
                   "test": result["test"], "seconds": result["seconds"], "cpu_seconds": result["cpu_seconds"],
                   "threads": a.threads}, f, indent=1)
    write_log(a.log, a, result, m, s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
