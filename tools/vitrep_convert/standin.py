#!/usr/bin/env python3
"""A stand-in for trained weights in torchvision's format, for tests of the trained-weights path
(tests/trained_weights_test.ts) on a machine that cannot download ImageNet weights.

It writes, into --out:
- <model>-standin.pth: a torchvision model's state dict saved with torch.save, as torchvision's
  own downloads are, with every tensor moved off its init by seeded noise (so the zero head, the
  layer norms' ones and zeros and the zero class token all carry values, as trained ones do);
- image.png: a seeded test image at the model's input size (a smooth pattern with noise);
- logits.json: the logits of torchvision's model holding that state dict on the image, scaled to
  [0, 1] and normalized with ImageNet's mean and std (what the converter records for a checkpoint
  file), computed by PyTorch alone, without the converter.

    python3 tools/vitrep_convert/standin.py vit_b_32 --seed 1 --out /tmp/standin

It imports nothing from the converter package, so it runs as a script."""

from __future__ import annotations

import argparse
import json
import math
import os
import struct
import zlib

import torch

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def standin_model(name: str, seed: int, scale: float = 0.02) -> torch.nn.Module:
    """torchvision's `name` (e.g. vit_b_32) in eval mode, every float tensor plus seeded noise
    of standard deviation `scale`."""
    import torchvision

    torch.manual_seed(seed)
    model = getattr(torchvision.models, name)()
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.add_(torch.randn_like(t) * scale)
    return model.eval()


def test_image(size: int, seed: int) -> torch.Tensor:
    """A [3, size, size] uint8 image: smooth waves per channel plus seeded noise."""
    gen = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(size) / size, torch.arange(size) / size, indexing="ij")
    chans = []
    for c in range(3):
        f = 2 + 3 * c
        wave = 0.5 + 0.3 * torch.sin(2 * math.pi * (f * xs + (c + 1) * ys)) * torch.cos(2 * math.pi * f * ys)
        chans.append(wave + 0.1 * torch.rand(size, size, generator=gen))
    return (torch.stack(chans).clamp(0, 1) * 255).round().to(torch.uint8)


def write_png(path: str, img: torch.Tensor) -> None:
    """Writes a [3, H, W] uint8 image as an 8-bit RGB PNG (no dependency beyond zlib)."""
    _, h, w = img.shape
    rows = img.permute(1, 2, 0).contiguous().numpy().reshape(h, w * 3)
    raw = b"".join(b"\x00" + rows[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(chunk(b"IEND", b""))


def reference_logits(name: str, checkpoint: str, img: torch.Tensor) -> torch.Tensor:
    """The logits of torchvision's `name` loaded from `checkpoint` on img (uint8 [3, H, W]), scaled
    to [0, 1] and normalized with ImageNet's mean and std."""
    import torchvision

    model = getattr(torchvision.models, name)()
    model.load_state_dict(torch.load(checkpoint, map_location="cpu"))
    model.eval()
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    x = ((img.float() / 255 - mean) / std).unsqueeze(0)
    with torch.no_grad():
        return model(x)[0]


def main(argv=None) -> int:
    """The command line: writes the checkpoint, the image and the reference logits."""
    ap = argparse.ArgumentParser(prog="standin.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a torchvision model name, e.g. vit_b_32")
    ap.add_argument("--seed", type=int, default=1, help="seed of the noise and the image (default 1)")
    ap.add_argument("--out", required=True, help="output folder (made if missing)")
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    model = standin_model(a.model, a.seed)
    ckpt = os.path.join(a.out, f"{a.model}-standin.pth")
    torch.save(model.state_dict(), ckpt)
    img = test_image(int(getattr(model, "image_size", 224)), a.seed)
    write_png(os.path.join(a.out, "image.png"), img)
    logits = reference_logits(a.model, ckpt, img)
    with open(os.path.join(a.out, "logits.json"), "w") as f:
        json.dump({"model": a.model, "checkpoint": os.path.basename(ckpt), "argmax": int(logits.argmax()),
                   "logits": [float(v) for v in logits]}, f)
    print(f"wrote {ckpt}, image.png and logits.json (argmax {int(logits.argmax())})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
