#!/usr/bin/env python3
"""Test fixtures and figures of the Fashion-MNIST models, made by PyTorch from the
converted weights (weights/fmnist_vit/trained.safetensors, weights/fmnist_resnet/...).

Writes into --out (default tests/fixtures/fmnist/):
  images.png        the first N test images (N = --subset, default 500) as model inputs: each
                    padded to 32² (grayscale PNG: R = G = B when read), tiled 25 to a row (image i at row i // 25,
                    column i % 25), so the tests read them with vitrep's own PNG reader
  labels.npy        float32 [N]      their labels
  logits_vit.npy    float32 [N,10]   PyTorch logits of the trained ViT on them
  logits_resnet.npy float32 [N,10]   the same for the ResNet
  sample_<k>.png    the first test image of class k (32², padded, grayscale), k = 0..9
  accuracy.json     PyTorch's accuracy on the subset and on all 10,000 test images
and PyTorch's predictions on all 10,000 test images into --pred-dir (default out/fmnist,
not committed) as pytorch_pred_<model>.npy, for tools/fmnist_eval.ts accuracy.

The inputs are the training script's: 28² padded to 32² with zeros, repeated to 3 channels,
normalized with the mean/std recorded in each manifest.

    /usr/bin/python3 tools/fmnist_fixtures.py
"""
import argparse
import json
import os
import struct
import sys
import zlib

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_fmnist as tf  # noqa: E402

TILES = 25  # images per row of images.png


def load_model(kind: str, folder: str):
    """The trained torch model from FOLDER/trained.safetensors, and the manifest's mean/std."""
    from vitrep_convert.weights import load_checkpoint

    with open(os.path.join(folder, "manifest.json")) as f:
        manifest = json.load(f)
    path = os.path.join(folder, manifest["weight_sets"]["trained"]["file"])
    sd = load_checkpoint(path)
    model = tf.make_model(kind)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit(f"error: {path!r} does not fit the {kind}: missing {missing[:3]}, unexpected {unexpected[:3]}")
    model.eval()
    mean = torch.tensor(manifest["input"]["mean"], dtype=torch.float32)[None, :, None, None]
    std = torch.tensor(manifest["input"]["std"], dtype=torch.float32)[None, :, None, None]
    return model, mean, std


@torch.no_grad()
def logits(model, mean, std, images: np.ndarray) -> np.ndarray:
    x = tf.to_input(images)
    return torch.cat([model((x[i:i + 500] - mean) / std) for i in range(0, len(x), 500)]).numpy()


def write_npy(path: str, a: np.ndarray) -> None:
    np.save(path + ".tmp.npy", np.ascontiguousarray(a))
    os.replace(path + ".tmp.npy", path)


def write_png(path: str, gray: np.ndarray) -> None:
    """A uint8 [H,W] image as an 8-bit grayscale PNG (readers give the value in R, G and B)."""
    h, w = gray.shape
    raw = b"".join(b"\x00" + np.ascontiguousarray(gray[y]).tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path + ".tmp", "wb") as f:
        f.write(png)
    os.replace(path + ".tmp", path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="tests/fixtures/fmnist")
    ap.add_argument("--subset", type=int, default=500, help="first N test images (default 500)")
    ap.add_argument("--data", default=tf.DATA)
    ap.add_argument("--pred-dir", default="out/fmnist")
    a = ap.parse_args(argv)
    if not 1 <= a.subset <= 10000:
        ap.error(f"--subset {a.subset}: expected 1..10000")
    torch.set_num_threads(2)
    x, y = tf.load_split(a.data, "t10k")
    os.makedirs(a.out, exist_ok=True)
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2)))
    rows = -(-a.subset // TILES)
    sheet = np.zeros((rows * 32, TILES * 32), dtype=np.uint8)
    for i in range(a.subset):
        sheet[(i // TILES) * 32:(i // TILES + 1) * 32, (i % TILES) * 32:(i % TILES + 1) * 32] = padded[i]
    write_png(os.path.join(a.out, "images.png"), sheet)
    write_npy(os.path.join(a.out, "labels.npy"), y[:a.subset].astype(np.float32))
    for k in range(10):
        write_png(os.path.join(a.out, f"sample_{k}.png"), padded[int(np.argmax(y == k))])
    acc = {}
    for kind in ("vit", "resnet"):
        model, mean, std = load_model(kind, f"weights/fmnist_{kind}")
        out = logits(model, mean, std, x)
        write_npy(os.path.join(a.out, f"logits_{kind}.npy"), out[:a.subset].astype(np.float32))
        pred = out.argmax(1)
        os.makedirs(a.pred_dir, exist_ok=True)
        write_npy(os.path.join(a.pred_dir, f"pytorch_pred_{kind}.npy"), pred.astype(np.float32))
        acc[kind] = {"subset": float((pred[:a.subset] == y[:a.subset]).mean()), "test": float((pred == y).mean())}
        print(f"{kind}: PyTorch accuracy {100 * acc[kind]['test']:.2f}% on the 10,000 test images, "
              f"{100 * acc[kind]['subset']:.2f}% on the first {a.subset}", file=sys.stderr)
    with open(os.path.join(a.out, "accuracy.json"), "w") as f:
        json.dump({"subset": a.subset, "pytorch": acc}, f, indent=1)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
