#!/usr/bin/env python3
"""Convert a torchvision Vision Transformer into per-block ONNX graphs for vitrep.

Every piece of the model (input processing, each encoder block, the head) becomes two
graphs: a forward graph (x -> y, plus the activations the backward pass needs) and a
vector-Jacobian-product graph (dy + saved activations -> dx). The backward passes are
written by hand in plain torch ops and verified against torch.autograd before anything
is written (`--check` prints the errors).

Weights are kept apart from graphs: graphs reference their parameters as ONNX external
data (location "__weights__", offsets listed in the manifest) and the weights themselves
go to one safetensors file per weight set, with torchvision's state-dict keys. The
runtime packs a weight set into each graph's external-data buffer, so any tensor can be
swapped without touching a graph.

    python3 tools/convert.py vit_b_32 --weights untrained --seed 0 --out weights/vit_b_32
    python3 tools/convert.py vit_b_32 --weights IMAGENET1K_V1 --out weights/vit_b_32
    python3 tools/convert.py vit_b_32 --weights ckpt.pth --out /tmp/vit_b_32 --check
    python3 tools/convert.py --list
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import io
import json
import math
import os
import struct
import sys
import warnings
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

OPSET = 17
LN_EPS = 1e-6
SWITCHES = ["use_ln1", "use_attn", "use_res1", "use_ln2", "use_mlp", "use_res2"]
STEM_SWITCHES = ["use_pos"]
EXTERNAL = "__weights__"
ALIGN = 64
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

ARCHS: Dict[str, dict] = {
    "vit_b_16": dict(patch_size=16, num_layers=12, num_heads=12, hidden_dim=768, mlp_dim=3072),
    "vit_b_32": dict(patch_size=32, num_layers=12, num_heads=12, hidden_dim=768, mlp_dim=3072),
    "vit_l_16": dict(patch_size=16, num_layers=24, num_heads=16, hidden_dim=1024, mlp_dim=4096),
    "vit_l_32": dict(patch_size=32, num_layers=24, num_heads=16, hidden_dim=1024, mlp_dim=4096),
    "vit_h_14": dict(patch_size=14, num_layers=32, num_heads=16, hidden_dim=1280, mlp_dim=5120),
}
DESCRIPTIONS = {
    "vit_b_16": "torchvision ViT-B/16 (86M params; IMAGENET1K_V1 224, SWAG 384)",
    "vit_b_32": "torchvision ViT-B/32 (88M params; IMAGENET1K_V1 224)",
    "vit_l_16": "torchvision ViT-L/16 (304M params; IMAGENET1K_V1 224, SWAG_E2E 512)",
    "vit_l_32": "torchvision ViT-L/32 (306M params; IMAGENET1K_V1 224)",
    "vit_h_14": "torchvision ViT-H/14 (632M params; SWAG_E2E 518, SWAG_LINEAR 224)",
}


# ---------------------------------------------------------------------------------------
# Parameter holder: a module whose parameters carry exact, dotted names.


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


def ln_fwd(x, w, b):
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
    cdf = 0.5 * (1.0 + torch.erf(z * (1.0 / math.sqrt(2.0))))
    pdf = torch.exp(-0.5 * z * z) * (1.0 / math.sqrt(2.0 * math.pi))
    return cdf + z * pdf


# ---------------------------------------------------------------------------------------
# Graph modules: forward (with saved activations) and VJP for stem, block, head.

BLOCK_SAVED = ["s_x1", "s_mean1", "s_rstd1", "s_q", "s_k", "s_v", "s_p", "s_mean2", "s_rstd2", "s_z"]


class StemFwd(Params):
    """image [1,3,H,W] -> tokens [1,1+n,D]: patch conv, class token, position embedding."""

    def __init__(self, tensors):
        super().__init__(tensors)
        shape = tensors["conv_proj.weight"].shape
        self.d, self.p = int(shape[0]), int(shape[-1])
        self.side = int(round(math.sqrt(tensors["encoder.pos_embedding"].shape[1] - 1)))

    def forward(self, x, use_pos):
        t = F.conv2d(x, self.w("conv_proj.weight"), self.w("conv_proj.bias"), stride=self.p)
        t = t.reshape(1, self.d, self.side * self.side).permute(0, 2, 1)
        t = torch.cat([self.w("class_token"), t], dim=1)
        return t + use_pos * self.w("encoder.pos_embedding")


class StemVjp(StemFwd):
    def forward(self, dy):
        dt = dy[:, 1:, :].permute(0, 2, 1).reshape(1, self.d, self.side, self.side)
        return F.conv_transpose2d(dt, self.w("conv_proj.weight"), stride=self.p)


class BlockFwd(Params):
    def __init__(self, tensors, num_heads, seq_len):
        super().__init__(tensors)
        self.num_heads, self.n = num_heads, seq_len
        self.d = int(tensors["ln_1.weight"].shape[0])

    def forward(self, x, use_ln1, use_attn, use_res1, use_ln2, use_mlp, use_res2):
        n, d, nh = self.n, self.d, self.num_heads
        hd = d // nh
        l1, mean1, rstd1 = LayerNormStats.apply(x, self.w("ln_1.weight"), self.w("ln_1.bias"))
        h = mix(use_ln1, l1, x)
        qkv = F.linear(h, self.w("self_attention.in_proj_weight"), self.w("self_attention.in_proj_bias"))
        qkv = qkv.reshape(n, 3, nh, hd).permute(1, 2, 0, 3)  # [3, nh, n, hd]
        q, k, v = qkv[0], qkv[1], qkv[2]
        s = torch.matmul(q, k.transpose(1, 2)) * (1.0 / math.sqrt(hd))
        p = torch.softmax(s, dim=-1)
        o = torch.matmul(p, v).permute(1, 0, 2).reshape(1, n, d)
        att = F.linear(o, self.w("self_attention.out_proj.weight"), self.w("self_attention.out_proj.bias"))
        a = mix(use_attn, att, h)
        x1 = a + use_res1 * x
        l2, mean2, rstd2 = LayerNormStats.apply(x1, self.w("ln_2.weight"), self.w("ln_2.bias"))
        g = mix(use_ln2, l2, x1)
        z = F.linear(g, self.w("mlp.0.weight"), self.w("mlp.0.bias"))
        m = F.linear(F.gelu(z), self.w("mlp.3.weight"), self.w("mlp.3.bias"))
        y = mix(use_mlp, m, g) + use_res2 * x1
        return y, x1, mean1, rstd1, q, k, v, p, mean2, rstd2, z


class BlockVjp(BlockFwd):
    takes_x = True

    def forward(self, dy, use_ln1, use_attn, use_res1, use_ln2, use_mlp, use_res2,
                x, x1, mean1, rstd1, q, k, v, p, mean2, rstd2, z):
        n, d, nh = self.n, self.d, self.num_heads
        hd = d // nh
        # y = mix(use_mlp, mlp(g), g) + use_res2 * x1
        dx1 = use_res2 * dy
        du = torch.matmul(use_mlp * dy, self.w("mlp.3.weight"))
        dz = du * gelu_grad(z)
        dg = (1.0 - use_mlp) * dy + torch.matmul(dz, self.w("mlp.0.weight"))
        # g = mix(use_ln2, ln2(x1), x1)
        dx1 = dx1 + (1.0 - use_ln2) * dg + ln_bwd(dg, x1, mean2, rstd2, use_ln2 * self.w("ln_2.weight"))
        # x1 = mix(use_attn, attn(h), h) + use_res1 * x
        dx = use_res1 * dx1
        do = torch.matmul(use_attn * dx1, self.w("self_attention.out_proj.weight"))
        do = do.reshape(n, nh, hd).permute(1, 0, 2)  # [nh, n, hd]
        dp = torch.matmul(do, v.transpose(1, 2))
        dv = torch.matmul(p.transpose(1, 2), do)
        ds = p * (dp - (dp * p).sum(-1, keepdim=True)) * (1.0 / math.sqrt(hd))
        dq = torch.matmul(ds, k)
        dk = torch.matmul(ds.transpose(1, 2), q)
        dqkv = torch.stack([dq, dk, dv], 0).permute(2, 0, 1, 3).reshape(1, n, 3 * d)
        dh = (1.0 - use_attn) * dx1 + torch.matmul(dqkv, self.w("self_attention.in_proj_weight"))
        # h = mix(use_ln1, ln1(x), x)
        return dx + (1.0 - use_ln1) * dh + ln_bwd(dh, x, mean1, rstd1, use_ln1 * self.w("ln_1.weight"))


class HeadFwd(Params):
    """tokens -> logits: final LayerNorm (class token only) and the linear head."""

    def forward(self, x):
        c, mean, rstd = LayerNormStats.apply(x[:, 0:1, :], self.w("encoder.ln.weight"), self.w("encoder.ln.bias"))
        return F.linear(c[:, 0, :], self.w("heads.head.weight"), self.w("heads.head.bias")), mean, rstd


class HeadVjp(Params):
    takes_x = True

    def __init__(self, tensors, seq_len):
        super().__init__(tensors)
        self.seq_len, self.d = seq_len, int(tensors["encoder.ln.weight"].shape[0])

    def forward(self, dy, x, mean, rstd):
        dc = torch.matmul(dy, self.w("heads.head.weight")).unsqueeze(1)
        d0 = ln_bwd(dc, x[:, 0:1, :], mean, rstd, self.w("encoder.ln.weight"))
        return F.pad(d0, (0, 0, 0, self.seq_len - 1))


# ---------------------------------------------------------------------------------------
# torchvision references (the ground truth the graphs are checked against)


def ref_block(layer: nn.Module, x: torch.Tensor, sw: Dict[str, float]) -> torch.Tensor:
    """torchvision EncoderBlock with ablation switches, built from its own submodules."""
    h = layer.ln_1(x) if sw["use_ln1"] else x
    a = layer.self_attention(h, h, h, need_weights=False)[0] if sw["use_attn"] else h
    x1 = a + x if sw["use_res1"] else a
    g = layer.ln_2(x1) if sw["use_ln2"] else x1
    m = layer.mlp(g) if sw["use_mlp"] else g
    return m + x1 if sw["use_res2"] else m


def ref_stem(model: nn.Module, x: torch.Tensor, use_pos: float) -> torch.Tensor:
    t = model._process_input(x)
    t = torch.cat([model.class_token.expand(1, -1, -1), t], dim=1)
    return t + model.encoder.pos_embedding if use_pos else t


def ref_head(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model.heads(model.encoder.ln(x)[:, 0])


# ---------------------------------------------------------------------------------------
# Init distributions (torchvision's VisionTransformer.__init__), recorded per tensor.


def init_spec(key: str, shape: Tuple[int, ...]) -> dict:
    def xavier(fan_out, fan_in):
        b = math.sqrt(6.0 / (fan_in + fan_out))
        return {"kind": "uniform", "low": -b, "high": b}

    leaf = key.split(".")
    if key == "conv_proj.weight":
        fan_in = shape[1] * shape[2] * shape[3]
        return {"kind": "trunc_normal", "mean": 0.0, "std": math.sqrt(1.0 / fan_in), "a": -2.0, "b": 2.0}
    if key == "encoder.pos_embedding":
        return {"kind": "normal", "mean": 0.0, "std": 0.02}
    if key.endswith("in_proj_weight"):
        return xavier(shape[0], shape[1])
    if key.endswith("out_proj.weight"):  # nn.Linear default: kaiming_uniform(a=sqrt(5))
        b = 1.0 / math.sqrt(shape[1])
        return {"kind": "uniform", "low": -b, "high": b}
    if ".mlp." in key and leaf[-1] == "weight":
        return xavier(shape[0], shape[1])
    if ".mlp." in key and leaf[-1] == "bias":
        return {"kind": "normal", "mean": 0.0, "std": 1e-6}
    if len(leaf) > 1 and leaf[-2].startswith("ln") and leaf[-1] == "weight":
        return {"kind": "constant", "value": 1.0}
    return {"kind": "constant", "value": 0.0}  # biases, class token, zero-initialised head


def spec_moments(spec: dict) -> Tuple[float, float]:
    """Mean and standard deviation of an init distribution."""
    k = spec["kind"]
    if k == "constant":
        return spec["value"], 0.0
    if k == "normal":
        return spec.get("mean", 0.0), spec["std"]
    if k == "uniform":
        return (spec["low"] + spec["high"]) / 2, (spec["high"] - spec["low"]) / math.sqrt(12)
    mu, sd = spec.get("mean", 0.0), spec["std"]
    al, be = (spec["a"] - mu) / sd, (spec["b"] - mu) / sd
    phi = lambda t: math.exp(-t * t / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda t: 0.5 * (1 + math.erf(t / math.sqrt(2)))  # noqa: E731
    z = cdf(be) - cdf(al)
    m = (phi(al) - phi(be)) / z
    var = 1 + (al * phi(al) - be * phi(be)) / z - m * m
    return mu + sd * m, sd * math.sqrt(var)


def check_init(sd: Dict[str, torch.Tensor], log) -> None:
    """Checks that init_spec describes torchvision's initialisation (mean/std within sampling error)."""
    for k, v in sd.items():
        spec = init_spec(k, tuple(v.shape))
        mean, std = spec_moments(spec)
        n = v.numel()
        got_mean, got_std = v.mean().item(), v.std().item() if n > 1 else 0.0
        if spec["kind"] == "constant":
            ok = bool((v == spec["value"]).all())
        else:
            ok = abs(got_mean - mean) <= 6 * std / math.sqrt(n) + 1e-12 and \
                abs(got_std - std) <= 6 * std * math.sqrt(2.0 / n) + 1e-12
        if not ok:
            raise SystemExit(f"error: init of {k} (mean {got_mean:.3g}, std {got_std:.3g}) does not match "
                             f"the recorded {spec}")
    log(f"  init distributions of {len(sd)} tensors match the recorded specs")


# ---------------------------------------------------------------------------------------
# Model construction and weight loading


def load_checkpoint(path: str) -> Dict[str, torch.Tensor]:
    if path.endswith(".safetensors"):
        return read_safetensors(path)
    kwargs = {"map_location": "cpu"}
    if "weights_only" in inspect.signature(torch.load).parameters:
        kwargs["weights_only"] = True
    sd = torch.load(path, **kwargs)
    if isinstance(sd, dict) and "model" in sd and isinstance(sd["model"], dict):
        sd = sd["model"]
    if not isinstance(sd, dict):
        raise SystemExit(f"error: checkpoint {path!r} is not a state dict: expected a dict of tensors")
    return sd


def build(model_name: str, weights: str, seed: int, image_size: Optional[int], arch: Optional[dict] = None):
    """Returns (torchvision model in eval mode, metadata dict)."""
    import torchvision
    from torchvision.models.vision_transformer import VisionTransformer

    meta = {"weights": weights, "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "categories": None}
    cfg = dict(arch or ARCHS[model_name])
    enum = None
    if model_name in ARCHS:
        enum = torchvision.models.get_model_weights(model_name)
    if weights == "untrained":
        torch.manual_seed(seed)
        size = image_size or cfg.pop("image_size", 224)
        cfg.pop("image_size", None)
        model = VisionTransformer(image_size=size, **cfg)
        meta["seed"] = seed
        if enum is not None:
            first = list(enum)[0]
            meta["categories"] = list(first.meta["categories"])
    elif os.path.exists(weights):
        sd = load_checkpoint(weights)
        pos = sd.get("encoder.pos_embedding")
        if pos is None:
            raise SystemExit(f"error: checkpoint {weights!r} has no 'encoder.pos_embedding': not a torchvision ViT state dict")
        n = pos.shape[1] - 1
        size = image_size or int(round(math.sqrt(n))) * cfg["patch_size"]
        cfg.pop("image_size", None)
        num_classes = sd["heads.head.weight"].shape[0] if "heads.head.weight" in sd else 1000
        cfg.pop("num_classes", None)
        model = VisionTransformer(image_size=size, num_classes=num_classes, **cfg)
        model.load_state_dict(sd)
        meta["weights"] = os.path.splitext(os.path.basename(weights))[0]
        if enum is not None and num_classes == 1000:
            meta["categories"] = list(list(enum)[0].meta["categories"])
    else:
        if enum is None:
            raise SystemExit(f"error: --weights {weights!r}: custom configurations take 'untrained' or a checkpoint file")
        names = [w.name for w in enum]
        if weights not in names:
            raise SystemExit(f"error: unknown --weights {weights!r} for {model_name}: expected untrained, a checkpoint file, or one of {', '.join(names)}")
        w = enum[weights]
        model = getattr(torchvision.models, model_name)(weights=w)
        t = w.transforms()
        meta["mean"], meta["std"] = list(t.mean), list(t.std)
        meta["categories"] = list(w.meta["categories"])
    model.eval()
    return model, meta


# ---------------------------------------------------------------------------------------
# Export


def export_graph(module: nn.Module, args: tuple, inputs: List[str], outputs: List[str]):
    import onnx

    buf = io.BytesIO()
    kwargs = dict(input_names=inputs, output_names=outputs, opset_version=OPSET, do_constant_folding=False)
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    with torch.no_grad():
        torch.onnx.export(module, args, buf, **kwargs)
    return onnx.load_from_string(buf.getvalue())


def externalize(model, names: List[str]) -> List[dict]:
    """Moves the named initializers to external data; returns their layout."""
    from onnx import TensorProto, numpy_helper

    layout, offset, seen = [], 0, set()
    for init in model.graph.initializer:
        if init.name not in names:
            continue
        arr = numpy_helper.to_array(init)
        if arr.dtype.name != "float32":
            raise RuntimeError(f"parameter {init.name} has dtype {arr.dtype}, expected float32")
        nbytes = arr.size * 4
        layout.append({"name": init.name, "shape": list(arr.shape), "offset": offset, "length": nbytes})
        seen.add(init.name)
        init.ClearField("raw_data")
        init.ClearField("float_data")
        init.data_location = TensorProto.EXTERNAL
        del init.external_data[:]
        for k, v in (("location", EXTERNAL), ("offset", str(offset)), ("length", str(nbytes))):
            e = init.external_data.add()
            e.key, e.value = k, v
        offset += (nbytes + ALIGN - 1) // ALIGN * ALIGN
    return layout


def sha256(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().contiguous().float().numpy().tobytes()).hexdigest()


def write_safetensors(path: str, tensors: Dict[str, torch.Tensor], metadata: Dict[str, str]) -> None:
    header: Dict[str, object] = {"__metadata__": metadata}
    offset, blobs = 0, []
    for name, t in tensors.items():
        data = t.detach().contiguous().float().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def read_safetensors(path: str) -> Dict[str, torch.Tensor]:
    import numpy as np

    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    out = {}
    types = {"F32": np.float32, "F16": np.float16, "F64": np.float64}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        if info["dtype"] not in types:
            raise SystemExit(f"error: tensor {name!r} in {path!r} has dtype {info['dtype']!r}: expected F32, F16 or F64")
        arr = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=types[info["dtype"]]).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.astype(np.float32))
    return out


def rel_err(a: torch.Tensor, b: torch.Tensor) -> Tuple[float, float]:
    abs_err = (a - b).abs().max().item()
    scale = b.abs().max().item()
    return abs_err, abs_err / scale if scale > 0 else abs_err


ABLATIONS = [
    {s: 1.0 for s in SWITCHES},
    {"use_ln1": 0.0, "use_attn": 1.0, "use_res1": 1.0, "use_ln2": 0.0, "use_mlp": 1.0, "use_res2": 1.0},
    {"use_ln1": 1.0, "use_attn": 0.0, "use_res1": 1.0, "use_ln2": 1.0, "use_mlp": 1.0, "use_res2": 1.0},
    {"use_ln1": 1.0, "use_attn": 1.0, "use_res1": 0.0, "use_ln2": 1.0, "use_mlp": 1.0, "use_res2": 0.0},
    {"use_ln1": 1.0, "use_attn": 1.0, "use_res1": 0.0, "use_ln2": 1.0, "use_mlp": 0.0, "use_res2": 0.0},
]


def check_piece(name, fwd_graph, vjp_graph, fwd_args, vjp_extra, ref_fn, x, sw_tensors, tol, log):
    """Compares a (forward, vjp) module pair with autograd through ref_fn; returns errors."""
    xr = x.clone().requires_grad_(True)
    yr = ref_fn(xr)
    dy = torch.randn_like(yr)
    (dxr,) = torch.autograd.grad(yr, xr, dy)
    with torch.no_grad():
        outs = fwd_graph(x, *fwd_args)
        outs = outs if isinstance(outs, tuple) else (outs,)
        xs = (x,) if vjp_graph.takes_x else ()
        dx = vjp_graph(dy, *vjp_extra, *xs, *outs[1:])
    fa, fr = rel_err(outs[0], yr.detach())
    ba, br = rel_err(dx, dxr)
    log(f"  {name:<28} forward max abs {fa:.2e} rel {fr:.2e} | vjp max abs {ba:.2e} rel {br:.2e}")
    if fr > tol or br > tol:
        raise SystemExit(f"error: {name} differs from torch.autograd by {max(fr, br):.2e} relative (> {tol:g})")
    return max(fr, br)


def convert(model, meta: dict, model_name: str, out: str, check: bool = True, write_weights: bool = True,
            weight_set: Optional[str] = None, log: Callable[[str], None] = print, tol: float = 1e-5,
            check_layers: int = 10**9) -> dict:
    """Writes out/manifest.json, out/graphs/*.onnx and out/<weight_set>.safetensors."""
    import onnx

    torch.set_grad_enabled(True)
    sd = {k: v.detach().float() for k, v in model.state_dict().items()}
    d = model.hidden_dim
    p = model.patch_size
    size = model.image_size
    nh = model.encoder.layers[0].num_heads
    layers = len(model.encoder.layers)
    seq = model.seq_length
    num_classes = sd["heads.head.weight"].shape[0]
    if "heads.pre_logits.weight" in sd:
        raise SystemExit("error: heads with a pre_logits layer are not supported")
    os.makedirs(os.path.join(out, "graphs"), exist_ok=True)
    stem_keys = ["conv_proj.weight", "conv_proj.bias", "class_token", "encoder.pos_embedding"]
    head_keys = ["encoder.ln.weight", "encoder.ln.bias", "heads.head.weight", "heads.head.bias"]
    block_local = ["ln_1.weight", "ln_1.bias", "self_attention.in_proj_weight", "self_attention.in_proj_bias",
                   "self_attention.out_proj.weight", "self_attention.out_proj.bias", "ln_2.weight", "ln_2.bias",
                   "mlp.0.weight", "mlp.0.bias", "mlp.3.weight", "mlp.3.bias"]
    prefix0 = "encoder.layers.encoder_layer_0."

    stem_t = {k: sd[k] for k in stem_keys}
    head_t = {k: sd[k] for k in head_keys}
    block_t = {k: sd[prefix0 + k] for k in block_local}
    mods = {
        "stem.fwd": StemFwd(stem_t), "stem.vjp": StemVjp(stem_t),
        "block.fwd": BlockFwd(block_t, nh, seq), "block.vjp": BlockVjp(block_t, nh, seq),
        "head.fwd": HeadFwd(head_t), "head.vjp": HeadVjp(head_t, seq),
    }
    one = torch.tensor(1.0)
    sws = [one] * len(SWITCHES)
    x_img = torch.rand(1, 3, size, size)
    x_tok = torch.randn(1, seq, d)

    if check:
        log(f"checking {model_name} ({meta['weights']}) against torch.autograd, tolerance {tol:g} relative")
        torch.manual_seed(1234)
        worst = 0.0
        for use_pos in (1.0, 0.0):
            worst = max(worst, check_piece(f"stem use_pos={use_pos:g}", mods["stem.fwd"], mods["stem.vjp"],
                                           (torch.tensor(use_pos),), (), lambda x: ref_stem(model, x, use_pos),
                                           torch.rand(1, 3, size, size), None, tol, log))
        for i, layer in enumerate(model.encoder.layers):
            prefix = f"encoder.layers.encoder_layer_{i}."
            bt = {k: sd[prefix + k] for k in block_local}
            fwd, vjp = BlockFwd(bt, nh, seq), BlockVjp(bt, nh, seq)
            if i >= check_layers:
                break
            settings = ABLATIONS if i == 0 else ABLATIONS[:1]
            for sw in settings:
                st = [torch.tensor(sw[s]) for s in SWITCHES]
                off = ",".join(s[4:] for s in SWITCHES if not sw[s]) or "none"
                x = torch.randn(1, seq, d)
                worst = max(worst, check_piece(f"block {i} off={off}", fwd, vjp, st, st,
                                               lambda x: ref_block(layer, x, sw), x, None, tol, log))
            if i == 0:
                # with every switch on the block must equal torchvision's own forward
                x = torch.randn(1, seq, d)
                with torch.no_grad():
                    a, r = rel_err(fwd(x, *sws)[0], layer(x))
                log(f"  {'block 0 vs EncoderBlock':<28} forward max abs {a:.2e} rel {r:.2e}")
                if r > tol:
                    raise SystemExit(f"error: block 0 differs from torchvision's EncoderBlock by {r:.2e}")
        if sd["heads.head.weight"].abs().max() == 0:
            # torchvision initialises the head to zero; check the graph math with a random head
            ht = dict(head_t)
            ht["heads.head.weight"] = torch.randn_like(ht["heads.head.weight"]) * 0.02
            ht["heads.head.bias"] = torch.randn_like(ht["heads.head.bias"]) * 0.02
            hf, hv = HeadFwd(ht), HeadVjp(ht, seq)
            ref_lin = nn.Linear(d, num_classes)
            ref_lin.weight.data, ref_lin.bias.data = ht["heads.head.weight"], ht["heads.head.bias"]
            ref = lambda x: ref_lin(model.encoder.ln(x)[:, 0])  # noqa: E731
        else:
            hf, hv, ref = mods["head.fwd"], mods["head.vjp"], lambda x: ref_head(model, x)  # noqa: E731
        worst = max(worst, check_piece("head", hf, hv, (), (), ref, torch.randn(1, seq, d), None, tol, log))
        # the whole chain with the graphs' math against the whole torchvision model
        x = torch.rand(1, 3, size, size)
        with torch.no_grad():
            t = mods["stem.fwd"](x, one)
            for i in range(layers):
                prefix = f"encoder.layers.encoder_layer_{i}."
                t = BlockFwd({k: sd[prefix + k] for k in block_local}, nh, seq)(t, *sws)[0]
            logits = mods["head.fwd"](t)[0]
            a, r = rel_err(logits, model(x))
        log(f"  {'whole model logits':<28} max abs {a:.2e} rel {r:.2e}")
        if r > tol and sd["heads.head.weight"].abs().max() > 0:
            raise SystemExit(f"error: chained logits differ from torchvision by {r:.2e}")
        if meta["weights"] == "untrained":
            check_init(sd, log)
        log(f"check passed: worst relative error {worst:.2e}")

    graphs = {}
    specs = {
        "stem.fwd": ((x_img, one), ["x"] + STEM_SWITCHES, ["y"]),
        "stem.vjp": ((torch.randn(1, seq, d),), ["dy"], ["dx"]),
        "block.fwd": ((x_tok, *sws), ["x"] + SWITCHES, ["y"] + BLOCK_SAVED),
        "head.fwd": ((x_tok,), ["x"], ["y", "s_mean", "s_rstd"]),
    }
    with torch.no_grad():
        saved_block = mods["block.fwd"](x_tok, *sws)[1:]
        saved_head = mods["head.fwd"](x_tok)[1:]
    specs["block.vjp"] = ((x_tok, *sws, x_tok, *saved_block), ["dy"] + SWITCHES + ["x"] + BLOCK_SAVED, ["dx"])
    specs["head.vjp"] = ((torch.randn(1, num_classes), x_tok, *saved_head), ["dy", "x", "s_mean", "s_rstd"], ["dx"])
    # Export from modules holding random, pairwise-distinct values: the exporter merges identical
    # initializers (e.g. all-zero biases), which would break per-tensor weight swapping. The values
    # themselves never reach the graph files: they become external data.
    gen = torch.Generator().manual_seed(0)
    rnd = lambda t: {k: torch.randn(v.shape, generator=gen) for k, v in t.items()}  # noqa: E731
    emods = {
        "stem.fwd": StemFwd(rnd(stem_t)), "stem.vjp": StemVjp(rnd(stem_t)),
        "block.fwd": BlockFwd(rnd(block_t), nh, seq), "block.vjp": BlockVjp(rnd(block_t), nh, seq),
        "head.fwd": HeadFwd(rnd(head_t)), "head.vjp": HeadVjp(rnd(head_t), seq),
    }
    for gname, (args, ins, outs) in specs.items():
        mod = emods[gname]
        g = export_graph(mod, args, ins, outs)
        params = [n for n in mod._names]
        present = {i.name for i in g.graph.initializer}
        layout = externalize(g, [n for n in params if n in present])
        missing = [n for n in params if n not in present]
        used = {n for n in params if n in present}
        # parameters the graph needs but torch renamed would show up as unknown initializers
        stray = [i.name for i in g.graph.initializer if i.data_location != 1 and i.name.split(".")[-1] in
                 ("weight", "bias") and i.name not in used]
        if stray:
            raise RuntimeError(f"{gname}: exporter renamed parameters {stray}")
        fname = f"graphs/{gname}.onnx"
        data = g.SerializeToString()
        tmp = os.path.join(out, fname + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, os.path.join(out, fname))
        graphs[gname] = {
            "file": fname, "sha256": hashlib.sha256(data).hexdigest(), "inputs": ins, "outputs": outs,
            "params": layout, "unused_params": missing,
        }

    tensors = {}
    for k, v in sd.items():
        tensors[k] = {"shape": list(v.shape), "dtype": "float32", "init": init_spec(k, tuple(v.shape))}
    if write_weights:
        weight_set = weight_set or meta["weights"]
        fname = f"{weight_set}.safetensors"
        write_safetensors(os.path.join(out, fname), sd, {"model": model_name, "weights": weight_set})
        weight_sets = {weight_set: {"file": fname, "source": meta["weights"],
                                    "sha256": {k: sha256(v) for k, v in sd.items()}}}
    else:
        weight_sets = {}
    stem_layer = {"name": "input", "graph": "stem", "prefix": "", "switches": STEM_SWITCHES}
    block_layers = [{"name": f"encoder_layer_{i}", "graph": "block", "prefix": f"encoder.layers.encoder_layer_{i}.",
                     "switches": SWITCHES} for i in range(layers)]
    head_layer = {"name": "logits", "graph": "head", "prefix": "", "switches": []}
    manifest = {
        "format": "vitrep-model/1",
        "name": model_name,
        "architecture": "vit",
        "image_size": size,
        "patch_size": p,
        "hidden_dim": d,
        "num_heads": nh,
        "num_layers": layers,
        "mlp_dim": model.mlp_dim,
        "seq_length": seq,
        "num_classes": num_classes,
        "layer_norm_eps": LN_EPS,
        "input": {"shape": [1, 3, size, size], "mean": meta["mean"], "std": meta["std"],
                  "range": [0, 1], "layout": "NCHW"},
        "opset": OPSET,
        "converter": {"torch": torch.__version__, "script": "tools/convert.py"},
        "external_data": EXTERNAL,
        "graphs": graphs,
        "layers": [stem_layer] + block_layers + [head_layer],
        "tensors": tensors,
        "weight_sets": weight_sets,
        "categories": meta["categories"],
    }
    old = os.path.join(out, "manifest.json")
    if os.path.exists(old):
        with open(old) as f:
            prev = json.load(f)
        # keep weight sets converted earlier for the same graphs
        same = all(prev.get(k) == manifest[k] for k in ("image_size", "patch_size", "hidden_dim", "num_layers"))
        if same:
            for k, v in prev.get("weight_sets", {}).items():
                manifest["weight_sets"].setdefault(k, v)
    tmp = old + ".tmp"
    with open(tmp, "w") as f:
        f.write(dump_json(manifest))
        f.write("\n")
    os.replace(tmp, old)
    return manifest


def parse_arch(ap, text: Optional[str]) -> dict:
    keys = {"patch": "patch_size", "layers": "num_layers", "heads": "num_heads", "hidden": "hidden_dim",
            "mlp": "mlp_dim", "classes": "num_classes"}
    if not text:
        ap.error("custom needs --arch patch=P,layers=L,heads=H,hidden=D,mlp=M")
    cfg = {}
    for part in text.split(","):
        k, _, v = part.partition("=")
        if k not in keys or not v.isdigit() or int(v) <= 0:
            ap.error(f"--arch entry {part!r}: expected one of {', '.join(keys)} = a positive integer")
        cfg[keys[k]] = int(v)
    missing = [k for k, v in keys.items() if v not in cfg and k != "classes"]
    if missing:
        ap.error(f"--arch lacks {', '.join(missing)}")
    if cfg["hidden_dim"] % cfg["num_heads"]:
        ap.error(f"--arch hidden={cfg['hidden_dim']} is not divisible by heads={cfg['num_heads']}")
    return cfg


def dump_json(obj, indent: int = 0) -> str:
    """JSON with one key per line but short lists (shapes, params) kept on one line."""
    pad = " " * (indent + 1)
    if isinstance(obj, dict) and obj:
        items = [f"{pad}{json.dumps(k)}: {dump_json(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(obj, list) and obj and isinstance(obj[0], dict):
        items = [pad + json.dumps(v, separators=(", ", ": ")) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
    return json.dumps(obj, separators=(", ", ": "))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", help="one of " + ", ".join(ARCHS) + ", or 'custom' with --arch")
    ap.add_argument("--arch", metavar="K=V,...",
                    help="custom untrained architecture: patch=8,layers=2,heads=2,hidden=16,mlp=32[,classes=10]")
    ap.add_argument("--weights", default="untrained",
                    help="'untrained', a torchvision weights name (e.g. IMAGENET1K_V1) or a checkpoint file")
    ap.add_argument("--seed", type=int, default=0, help="seed for untrained weights (default 0)")
    ap.add_argument("--image-size", type=int, help="image size for untrained models (default 224)")
    ap.add_argument("--out", help="output folder")
    ap.add_argument("--name", help="weight-set name in the manifest (default: the weights' name)")
    ap.add_argument("--check", action="store_true", help="print errors against torch.autograd (always verified)")
    ap.add_argument("--no-verify", action="store_true", help="skip verification (not recommended)")
    ap.add_argument("--check-layers", type=int, default=10**9, metavar="K",
                    help="verify only the first K encoder blocks one by one (default: all; the chained "
                         "whole-model check always runs)")
    ap.add_argument("--graphs-only", action="store_true", help="write graphs and manifest but no weight file")
    ap.add_argument("--list", action="store_true", help="list the models this converter knows")
    a = ap.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)  # torch.onnx's constant-folding notes
    if a.list:
        for k, v in DESCRIPTIONS.items():
            print(f"{k:<10} {v}")
        return 0
    arch = None
    if a.model == "custom":
        arch = parse_arch(ap, a.arch)
        if a.weights != "untrained" and not os.path.exists(a.weights):
            ap.error("custom architectures take --weights untrained or a checkpoint file")
    elif a.model not in ARCHS:
        ap.error(f"unknown model {a.model!r}: expected one of {', '.join(ARCHS)}, or custom")
    if not a.out:
        ap.error("--out DIR is required")
    patch = (arch or ARCHS.get(a.model, {}))["patch_size"]
    if a.image_size is not None and (a.image_size <= 0 or a.image_size % patch):
        ap.error(f"--image-size {a.image_size}: expected a positive multiple of the patch size {patch}")
    model, meta = build(a.model, a.weights, a.seed, a.image_size, arch)
    name = a.name or (f"untrained-seed{a.seed}" if a.weights == "untrained" else meta["weights"])
    quiet = (lambda s: None) if not a.check else print
    convert(model, meta, a.model, a.out, check=not a.no_verify, write_weights=not a.graphs_only,
            weight_set=name, log=quiet if not a.check else print, check_layers=a.check_layers)
    print(f"wrote {a.out}/manifest.json ({a.model}, image {model.image_size}, weights {name})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
