"""Shared layers of the graph modules: a parameter holder whose tensors keep their dotted
state-dict names, the ablation switches (`mix`, `select`), LayerNorm with its statistics and
its input gradient, the exact GELU's derivative, and the ReLU / max-pool input gradients."""

from __future__ import annotations

import math
from typing import Dict

import torch
import torch.nn as nn
import torch.nn.functional as F

LN_EPS = 1e-6


class Params(nn.Module):
    """Holds tensors as parameters under dotted names (exported as initializer names)."""

    takes_x = False  # a VJP graph that also takes the forward input x

    def __init__(self, tensors: Dict[str, torch.Tensor]):
        super().__init__()
        self._names = list(tensors)
        for name, t in tensors.items():
            mod: nn.Module = self
            *path, leaf = name.split(".")
            for part in path:
                if not hasattr(mod, part):
                    mod.add_module(part, nn.Module())
                mod = getattr(mod, part)
            mod.register_parameter(leaf, nn.Parameter(t.detach().clone().float(), requires_grad=False))

    def w(self, name: str) -> torch.Tensor:
        mod = self
        for part in name.split("."):
            mod = getattr(mod, part)
        return mod  # type: ignore[return-value]


def mix(f: torch.Tensor, on: torch.Tensor, off: torch.Tensor) -> torch.Tensor:
    """off + f * (on - off): f = 1 keeps the op, f = 0 makes it the identity."""
    return off + f * (on - off)


def select(f: torch.Tensor, on: torch.Tensor, off: torch.Tensor) -> torch.Tensor:
    """f * on + (1 - f) * off: exactly `on` for f = 1 and `off` for f = 0. (mix() computes
    off + f * (on - off), which for f = 1 rounds on - off: an absolute error of about eps * |off|, large
    against a small op output such as an untrained MLP's beside its O(1) input.)"""
    return f * on + (1.0 - f) * off


def ln_fwd(x, w, b):
    """LayerNorm over the last axis as plain two-pass ops: (y, mean, 1/std)."""
    mu = x.mean(-1, keepdim=True)
    xc = x - mu
    var = (xc * xc).mean(-1, keepdim=True)
    rstd = 1.0 / torch.sqrt(var + LN_EPS)
    return xc * rstd * w + b, mu, rstd


class LayerNormStats(torch.autograd.Function):
    """LayerNorm returning (y, mean, 1/std); exported as one ONNX LayerNormalization node
    with its optional Mean and InvStdDev outputs."""

    @staticmethod
    def forward(ctx, x, w, b):  # noqa: D102
        return ln_fwd(x, w, b)

    @staticmethod
    def symbolic(g, x, w, b):  # noqa: D102
        return g.op("LayerNormalization", x, w, b, epsilon_f=LN_EPS, axis_i=-1, outputs=3)


def ln_bwd(dy, x, mu, rstd, w):
    """Input gradient of LayerNorm; the normalized input is recomputed from x."""
    xhat = (x - mu) * rstd
    g = dy * w
    return rstd * (g - g.mean(-1, keepdim=True) - xhat * (g * xhat).mean(-1, keepdim=True))


def gelu_grad(z):
    """Derivative of the exact (erf) GELU at z."""
    cdf = 0.5 * (1.0 + torch.erf(z * (1.0 / math.sqrt(2.0))))
    pdf = torch.exp(-0.5 * z * z) * (1.0 / math.sqrt(2.0 * math.pi))
    return cdf + z * pdf


def relu_mask(dy, out):
    """ReLU's input gradient from its saved output, as dy · (out > 0): Greater, Cast, Mul run in
    about half the time of the equivalent Where on onnxruntime's CPU kernels (Where broadcasts
    element by element)."""
    return dy * (out > 0).to(dy.dtype)


def maxpool_vjp(dy, a, pool: dict):
    """Max-pool's input gradient from its input a: dy goes to the first maximum of each window
    in row-major order (PyTorch's choice among ties). Built from plain ops — the window's
    K = kh·kw strided views of a padded with -inf, a running one-hot of the first maximum, and a
    grouped transposed convolution with one-hot kernels that adds each view back where it came
    from — so no backend needs MaxPool's Indices output or int64 scatters (WebGPU has neither)."""
    (kh, kw), (sh, sw), (ph, pw) = pool["kernel"], pool["stride"], pool["padding"]
    (h, w), (oh, ow) = pool["in"], pool["out"]
    c = a.shape[1]
    ap = F.pad(a, (pw, pw, ph, ph), value=float("-inf"))
    views = [ap[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw] for i in range(kh) for j in range(kw)]
    m = views[0]
    for v in views[1:]:
        m = torch.maximum(m, v)
    taken = torch.zeros_like(m)
    parts = []
    for v in views:
        first = (v == m).to(dy.dtype) * (1.0 - taken)
        taken = taken + first
        parts.append(dy * first)
    k = kh * kw
    g = torch.stack(parts, dim=2).reshape(1, c * k, oh, ow)
    onehot = torch.eye(k, dtype=dy.dtype).reshape(k, 1, kh, kw).repeat(c, 1, 1, 1)
    op = tuple(size - ((o - 1) * st - 2 * pd + kk) for size, o, st, pd, kk in
               ((h, oh, sh, ph, kh), (w, ow, sw, pw, kw)))
    return F.conv_transpose2d(g, onehot, None, (sh, sw), (ph, pw), op, c)


def _pool_geometry(pool: dict):
    (kh, kw), (sh, sw), (ph, pw) = pool["kernel"], pool["stride"], pool["padding"]
    return dict(kernel_shape_i=[kh, kw], strides_i=[sh, sw], pads_i=[ph, pw, ph, pw])


def _plane_offsets(a):
    """The flat index of each (n, c) plane's first element, [N, C, 1, 1]."""
    n, c, h, w = a.shape
    return (torch.arange(n * c, dtype=torch.int64) * (h * w)).reshape(n, c, 1, 1)


class MaxPoolIndexed(torch.autograd.Function):
    """Max pooling with ONNX MaxPool's Indices output: (y, i), i the flat index of each window's
    maximum over the whole [N, C, H, W] input (ONNX's convention). For CPU backends, whose
    MaxPool kernels give the indices: the VJP is then one scatter-add (see max_unpool)."""

    @staticmethod
    def forward(ctx, a, pool):  # noqa: D102
        (kh, kw), (sh, sw), (ph, pw) = pool["kernel"], pool["stride"], pool["padding"]
        y, i = F.max_pool2d(a, (kh, kw), (sh, sw), (ph, pw), return_indices=True)
        return y, i + _plane_offsets(a)

    @staticmethod
    def symbolic(g, a, pool):  # noqa: D102
        return g.op("MaxPool", a, outputs=2, **_pool_geometry(pool))


class _ScatterAddFlat(torch.autograd.Function):
    """zeros shaped like a, with dy added at the flat indices i (ONNX: ConstantOfShape and one
    ScatterElements with reduction add, so no zero tensor is stored in the graph)."""

    @staticmethod
    def forward(ctx, dy, i, a):  # noqa: D102
        return torch.zeros_like(a).reshape(-1).scatter_add(0, i.reshape(-1), dy.reshape(-1)).reshape(a.shape)

    @staticmethod
    def symbolic(g, dy, i, a):  # noqa: D102
        shape = g.op("Shape", a)
        minus_one = g.op("Constant", value_t=torch.tensor([-1], dtype=torch.int64))
        flat = lambda t: g.op("Reshape", t, minus_one)  # noqa: E731
        zeros = g.op("ConstantOfShape", shape, value_t=torch.tensor([0.0]))
        out = g.op("ScatterElements", flat(zeros), flat(i), flat(dy), axis_i=0, reduction_s="add")
        return g.op("Reshape", out, shape)


def max_unpool(dy, i, a):
    """Max pooling's input gradient from the flat indices of MaxPoolIndexed: each dy added at its
    window's maximum in a zero tensor shaped like the pool's input a (overlapping windows that pick
    the same element add up; one ScatterElements with reduction add)."""
    return _ScatterAddFlat.apply(dy, i, a)
