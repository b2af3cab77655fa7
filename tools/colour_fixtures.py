#!/usr/bin/env python3
"""Test fixtures of the colour photograph ViT (weights/colour_vit), made by PyTorch from the
converted weights (weights/colour_vit/trained.safetensors) and held-out crops of the training
photographs (tools/train_colour.py: the same fixed held-out set its accuracy is measured on).

Writes into --out (default tests/fixtures/colour_vit/):
  images.png     the first N held-out crops of each class (N = --per-class, default 10), as uint8
                 RGB 32×32 tiles, one class to a row (crop j of class k at row k, column j), so
                 the tests read them with vitrep's own PNG reader
  labels.npy     float32 [10·N]      their classes (row-major over the sheet)
  logits.npy     float32 [10·N,10]   PyTorch logits of the trained ViT on them (the uint8 pixels / 255,
                 normalized with the manifest's mean/std)
  accuracy.json  PyTorch's accuracy on these crops and on the whole held-out set (uint8 crops)
  SOURCES.md     where the crops come from, and their licences

    /usr/bin/python3 tools/colour_fixtures.py --photos /usr/share/backgrounds
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_colour as tc  # noqa: E402


def load_model(folder: str):
    """The trained torch model from FOLDER/trained.safetensors, and the manifest's mean/std."""
    from vitrep_convert.weights import load_checkpoint

    with open(os.path.join(folder, "manifest.json")) as f:
        manifest = json.load(f)
    path = os.path.join(folder, manifest["weight_sets"]["trained"]["file"])
    model = tc.make_model()
    missing, unexpected = model.load_state_dict(load_checkpoint(path), strict=False)
    if missing or unexpected:
        raise SystemExit(f"error: {path!r} does not fit the ViT: missing {missing[:3]}, unexpected {unexpected[:3]}")
    model.eval()
    mean = torch.tensor(manifest["input"]["mean"], dtype=torch.float32)[None, :, None, None]
    std = torch.tensor(manifest["input"]["std"], dtype=torch.float32)[None, :, None, None]
    return model, mean, std


def write_npy(path: str, a: np.ndarray) -> None:
    np.save(path + ".tmp.npy", np.ascontiguousarray(a))
    os.replace(path + ".tmp.npy", path)


def write_png(path: str, rgb: np.ndarray) -> None:
    """A uint8 [H,W,3] image as an 8-bit RGB PNG."""
    from PIL import Image

    Image.fromarray(rgb, "RGB").save(path + ".tmp.png", optimize=True)
    os.replace(path + ".tmp.png", path)


def sources(per_class: int) -> str:
    rows = [f"| {k} | {c} | {os.path.basename(f)} | {tc.PACKAGE if w == 'backgrounds' else 'this repository'} | "
            f"{au} | {lic} |" for k, (c, f, w, au, lic, _) in enumerate(tc.PHOTOS)]
    return "\n".join([
        "# Held-out crops of the colour photograph ViT's training photographs",
        "",
        f"`images.png` holds {per_class} crops (32×32, resampled from squares of 24–48 px) of each photograph below,",
        "row k from photograph k, all from the held-out region (the last 30% of the photograph's longer",
        "side, after resizing its shorter side to 160 px). Made by `tools/colour_fixtures.py`; the crops are",
        "modified (cropped, resized, some mirrored) from the photographs. Licences as stated in Debian's",
        f"`/usr/share/doc/{tc.PACKAGE}/copyright` (CC-BY-4.0: https://creativecommons.org/licenses/by/4.0/;",
        "CC0-1.0: https://creativecommons.org/publicdomain/zero/1.0/) and for the rocket in",
        "`tests/fixtures/images/SOURCES.md`.",
        "",
        "| row | category | photograph | source | author | licence |",
        "| --- | -------- | ---------- | ------ | ------ | ------- |",
        *rows,
        "",
    ])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="tests/fixtures/colour_vit")
    ap.add_argument("--model", default="weights/colour_vit")
    ap.add_argument("--photos", default=tc.BACKGROUNDS)
    ap.add_argument("--per-class", type=int, default=10, help="held-out crops per class in the fixture (default 10)")
    a = ap.parse_args(argv)
    if not 1 <= a.per_class <= tc.DEFAULTS["test_per_class"]:
        ap.error(f"--per-class {a.per_class}: expected 1..{tc.DEFAULTS['test_per_class']}")
    torch.set_num_threads(2)
    photos = tc.load_photos(a.photos)
    per = tc.DEFAULTS["test_per_class"]
    x, y = tc.held_out_set(photos, per)  # uint8 [10·per,3,32,32], class-major
    model, mean, std = load_model(a.model)
    logits = tc.predict(model, x, mean, std)
    pred = logits.argmax(1)
    n = len(tc.CLASSES)
    pick = torch.cat([torch.arange(k * per, k * per + a.per_class) for k in range(n)])
    s = tc.IMAGE
    sheet = np.zeros((n * s, a.per_class * s, 3), dtype=np.uint8)
    tiles = x[pick].permute(0, 2, 3, 1).numpy()
    for i in range(len(pick)):
        r, c = divmod(i, a.per_class)
        sheet[r * s:(r + 1) * s, c * s:(c + 1) * s] = tiles[i]
    os.makedirs(a.out, exist_ok=True)
    write_png(os.path.join(a.out, "images.png"), sheet)
    write_npy(os.path.join(a.out, "labels.npy"), y[pick].numpy().astype(np.float32))
    write_npy(os.path.join(a.out, "logits.npy"), logits[pick].numpy().astype(np.float32))
    acc = {"fixture": float((pred[pick] == y[pick]).float().mean()), "held_out": float((pred == y).float().mean())}
    with open(os.path.join(a.out, "accuracy.json"), "w") as f:
        json.dump({"per_class": a.per_class, "held_out_crops": len(y), "pytorch": acc}, f, indent=1)
        f.write("\n")
    with open(os.path.join(a.out, "SOURCES.md"), "w") as f:
        f.write(sources(a.per_class))
    print(f"PyTorch accuracy {100 * acc['held_out']:.2f}% on the {len(y)} held-out crops (uint8), "
          f"{100 * acc['fixture']:.2f}% on the fixture's {len(pick)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
