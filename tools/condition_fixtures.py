#!/usr/bin/env python3
"""The fixture of tests/condition_test.ts: the true singular-value spread of one encoder block's
Jacobian, made by PyTorch in float64 from the full Jacobian, for the trained Fashion-MNIST ViT
(weights/fmnist_vit, committed): block 1 at the tokens entering it for one committed test image
(tests/fixtures/fmnist/sample_0.png), intact and with attention removed.

J = d block_1(x) / dx at x = the input processing's output (65 tokens x 64 = 4160 values), formed
row by row by reverse mode on a batch of copies of x. sigma_max: 300 Lanczos steps on J^T J in float64
(converged: the fixture records the residual ||J^T J z - s^2 z|| of its vector); sigma_min: inverse
subspace iteration with J's LU factorization (residual recorded too). Both equal
torch.linalg.svdvals of the full Jacobian (--svd adds it; its bidiagonalization takes minutes of CPU).
Besides, the reference of vitrep's Lanczos: the same m steps (full reorthogonalization,
classical Gram-Schmidt twice) on J^T J in float64 with the exact J, from the start vector vitrep
draws for seed 0 (its xoshiro128** Rng and Box-Muller, ported below), so the test can compare
vitrep's Ritz values, made with a float32 VJP and finite differences, with exact-arithmetic ones.

Writes tests/fixtures/condition/fmnist_vit_block1.json (a few KB):

    /usr/bin/python3 tools/condition_fixtures.py        # about a minute of CPU
"""
import argparse
import json
import math
import os
import struct
import sys
import zlib

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist_fixtures as ff  # noqa: E402
from vitrep_convert import vit  # noqa: E402
from vitrep_convert.tokens import SWITCHES  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
IMAGE = "tests/fixtures/fmnist/sample_0.png"
CASES = {"intact": [], "no_attention": ["use_attn"]}
ITERATIONS = (40, 80)
TRUTH_STEPS = 300  # Lanczos steps for sigma_max itself (converged far beyond float32)
SEED = 0
M64, M32 = (1 << 64) - 1, (1 << 32) - 1


class Rng:
    """vitrep's Rng (src/model/rng.ts): xoshiro128** seeded by splitmix64; Box-Muller normals."""

    def __init__(self, seed: int):
        state = seed & M64
        self.s = []
        for _ in range(2):
            state = (state + 0x9E3779B97F4A7C15) & M64
            z = state
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
            z ^= z >> 31
            self.s += [z & M32, z >> 32]
        self.spare = None

    def uint32(self) -> int:
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (32 - k))) & M32  # noqa: E731
        result = (rotl((s[1] * 5) & M32, 7) * 9) & M32
        t = (s[1] << 9) & M32
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 11)
        return result

    def uniform(self) -> float:
        hi, lo = self.uint32() >> 5, self.uint32() >> 6
        return (hi * 67108864 + lo) / 9007199254740992

    def normal(self) -> float:
        if self.spare is not None:
            z, self.spare = self.spare, None
            return z
        r = math.sqrt(-2 * math.log(1 - self.uniform()))
        theta = 2 * math.pi * self.uniform()
        self.spare = r * math.sin(theta)
        return r * math.cos(theta)


def read_gray_png(path: str) -> np.ndarray:
    """An 8-bit grayscale PNG without filters (as tools/fmnist_fixtures.py writes them) as uint8 [H,W]."""
    with open(path, "rb") as f:
        b = f.read()
    pos, idat, w, h = 8, b"", 0, 0
    while pos < len(b):
        n, kind = struct.unpack(">I", b[pos:pos + 4])[0], b[pos + 4:pos + 8]
        data = b[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            w, h, depth, colour = struct.unpack(">IIBB", data[:10])
            if (depth, colour) != (8, 0):
                raise SystemExit(f"error: {path}: expected an 8-bit grayscale PNG")
        elif kind == b"IDAT":
            idat += data
    raw = zlib.decompress(idat)
    rows = [raw[y * (w + 1):(y + 1) * (w + 1)] for y in range(h)]
    if any(r[0] != 0 for r in rows):
        raise SystemExit(f"error: {path}: expected PNG rows without filters")
    return np.stack([np.frombuffer(r[1:], np.uint8) for r in rows])


def jacobian(f, x: torch.Tensor, chunk: int = 416) -> torch.Tensor:
    """The full Jacobian of f at x ([1, T, D] -> [1, T, D]) as [T*D, T*D], by reverse mode on batches of copies."""
    n = x.numel()
    rows = []
    for k in range(0, n, chunk):
        b = min(chunk, n - k)
        xs = x.detach().expand(b, *x.shape[1:]).clone().requires_grad_(True)
        g = torch.zeros(b, n, dtype=x.dtype)
        g[torch.arange(b), torch.arange(k, k + b)] = 1
        (dx,) = torch.autograd.grad(f(xs), xs, g.reshape(xs.shape))
        rows.append(dx.reshape(b, n))
    return torch.cat(rows)


def lanczos(jac: np.ndarray, start: np.ndarray, m: int):
    """m Lanczos steps on J^T J (applied as J then J^T), as vitrep's lanczosGram: the Ritz singular values
    (largest first), and the top Ritz vector with its residual ||J^T J z - s^2 z||."""
    basis = np.zeros((m, len(start)))
    basis[0] = start / np.linalg.norm(start)
    alpha, beta = [], []
    for j in range(m):
        w = jac.T @ (jac @ basis[j])
        alpha.append(basis[j] @ w)
        for _ in range(2):  # classical Gram-Schmidt against the whole basis, twice
            w -= basis[:j + 1].T @ (basis[:j + 1] @ w)
        if j == m - 1:
            break
        beta.append(np.linalg.norm(w))
        basis[j + 1] = w / beta[-1]
    t = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
    lam, vec = np.linalg.eigh(t)
    z = basis.T @ vec[:, -1]
    residual = np.linalg.norm(jac.T @ (jac @ z) - lam[-1] * z)
    return np.sqrt(np.clip(lam, 0, None))[::-1], residual


def sigma_min(j: torch.Tensor, k: int = 6, steps: int = 300):
    """The smallest singular value of j by inverse subspace iteration on (J^T J)^-1 with J's LU
    factorization (k vectors, Rayleigh-Ritz each step, until it is stable to 1e-13), and the residual
    ||J^T J z - s^2 z|| of its vector: far cheaper than a full SVD on a shared machine."""
    lu, piv = torch.linalg.lu_factor(j)
    gen = torch.Generator().manual_seed(0)
    v = torch.linalg.qr(torch.randn(j.shape[0], k, dtype=j.dtype, generator=gen))[0]
    prev = None
    for _ in range(steps):
        w = torch.linalg.lu_solve(lu, piv, torch.linalg.lu_solve(lu, piv, v, adjoint=True))
        v = torch.linalg.qr(w)[0]
        jv = j @ v
        lam, vec = torch.linalg.eigh(jv.T @ jv)
        v = v @ vec
        if prev is not None and abs(lam[0] - prev) <= 1e-13 * lam[0]:
            break
        prev = lam[0]
    z = v[:, 0]
    residual = torch.linalg.norm(j.T @ (j @ z) - lam[0] * z).item()
    return math.sqrt(lam[0].item()), residual


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "condition", "fmnist_vit_block1.json"))
    ap.add_argument("--svd", action="store_true", help="also torch.linalg.svdvals of each Jacobian (slow)")
    args = ap.parse_args()
    torch.manual_seed(0)
    model, mean, std = ff.load_model("vit", os.path.join(ROOT, "weights", "fmnist_vit"))
    model = model.double()
    gray = read_gray_png(os.path.join(ROOT, IMAGE))
    x = torch.from_numpy(gray.astype(np.float64) / 255)[None, None].repeat(1, 3, 1, 1)
    x = (x - mean.double()) / std.double()
    with torch.no_grad():
        tokens = vit.ref_stem(model, x, 1.0)
    rng = Rng(SEED)
    start = np.array([rng.normal() for _ in range(tokens.numel())])
    out = {
        "about": "tools/condition_fixtures.py: block 1 of weights/fmnist_vit (trained) at the tokens of the image",
        "model": "fmnist_vit", "weights": "trained", "image": IMAGE, "layer": 1, "seed": SEED,
        "dims": list(tokens.shape), "tokens_norm": tokens.norm().item(), "start_head": start[:4].tolist(),
        "cases": {},
    }
    for name, off in CASES.items():
        sw = {s: 0.0 if s in off else 1.0 for s in SWITCHES}
        j = jacobian(lambda t: vit.ref_block(model.encoder.layers[0], t, sw), tokens)
        jn = j.numpy()
        top, top_residual = lanczos(jn, start, TRUTH_STEPS)
        low, low_residual = sigma_min(j)
        case = {"remove": [o.removeprefix("use_") for o in off], "sigma_max": float(top[0]),
                "sigma_min": low, "kappa": float(top[0] / low),
                "residuals": {"sigma_max": float(top_residual), "sigma_min": low_residual}}
        if args.svd:  # the full SVD: minutes of CPU
            sv = torch.linalg.svdvals(j)
            case["svd"] = {"sigma_max": sv[0].item(), "sigma_min": sv[-1].item()}
        for m in ITERATIONS:
            case[f"ritz_{m}"] = [float(f"{v:.9g}") for v in lanczos(jn, start, m)[0]]
        out["cases"][name] = case
        print(f"{name}: sigma_max {top[0]:.6g}, sigma_min {low:.6g}, kappa {top[0] / low:.6g} "
              f"(residuals {top_residual:.1e}, {low_residual:.1e}); "
              + ", ".join(f"{m} Lanczos steps: kappa >= {case[f'ritz_{m}'][0] / case[f'ritz_{m}'][-1]:.4g}"
                          for m in ITERATIONS), flush=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".tmp", "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    os.replace(args.out + ".tmp", args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
