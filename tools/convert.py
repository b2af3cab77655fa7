#!/usr/bin/env python3
"""Convert a torchvision Vision Transformer, a timm MLP-Mixer or a feed-forward-only ViT
(Melas-Kyriazi) into per-block ONNX graphs for vitrep.

Every piece of the model (input processing, each encoder block, the head) becomes two
graphs: a forward graph (x -> y, plus the activations the backward pass needs) and a
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
    python3 tools/convert.py mixer_b16_224 --weights jx_mixer_b16_224-76587d61.pth --out weights/mixer_b16_224
    python3 tools/convert.py mixer --image-size 224 --out /tmp/mixer_cf \\
        --arch patch=16,hidden=1024,tokens_mlp=512,channels_mlp=4096,layers=8,order=channel_first
    python3 tools/convert.py linear_tiny --weights linear_tiny_state_dict.pth --out weights/linear_tiny
    python3 tools/convert.py --list

The attentionless models' graphs take the ViT's switches (see switch_meaning() and --list), so
the runtime chains them unchanged.
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


def check_init(sd: Dict[str, torch.Tensor], log, spec_fn: Callable[[str, Tuple[int, ...]], dict] = None) -> None:
    """Checks that init_spec (or spec_fn) describes the model's initialisation (mean/std within sampling
    error)."""
    for k, v in sd.items():
        spec = (spec_fn or init_spec)(k, tuple(v.shape))
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
    try:
        sd = torch.load(path, **kwargs)
    except Exception:  # noqa: BLE001 - e.g. a training checkpoint pickling its argparse options (DeiT)
        if not kwargs.get("weights_only"):
            raise
        raise SystemExit(
            f"error: checkpoint {path!r} holds more than tensors (e.g. a training run's options), so it is not "
            "loaded (unpickling it would run code). If you trust it, save its state dict alone, e.g.\n  python3 -c "
            "\"import torch; c = torch.load('CKPT.pth', map_location='cpu'); torch.save(c.get('model', c), "
            "'STATE_DICT.pth')\"\nand convert that file") from None
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


def export_graphs(out: str, emods: Dict[str, nn.Module], specs: Dict[str, tuple]) -> Dict[str, dict]:
    """Exports each (module, example args, input names, output names) as out/graphs/NAME.onnx with its
    parameters moved to external data; returns the manifest's graph entries."""
    graphs = {}
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
    return graphs


def write_weight_set(out: str, sd: Dict[str, torch.Tensor], model_name: str, meta: dict,
                     weight_set: Optional[str]) -> dict:
    """Writes out/<weight_set>.safetensors; returns the manifest's weight_sets entry."""
    weight_set = weight_set or meta["weights"]
    fname = f"{weight_set}.safetensors"
    write_safetensors(os.path.join(out, fname), sd, {"model": model_name, "weights": weight_set})
    return {weight_set: {"file": fname, "source": meta["weights"], "sha256": {k: sha256(v) for k, v in sd.items()}}}


def write_manifest(out: str, manifest: dict, same_keys: Tuple[str, ...]) -> None:
    """Writes out/manifest.json, keeping the weight sets of an earlier manifest whose same_keys agree."""
    old = os.path.join(out, "manifest.json")
    if os.path.exists(old):
        with open(old) as f:
            prev = json.load(f)
        # keep weight sets converted earlier for the same graphs
        same = all(prev.get(k) == manifest[k] for k in same_keys)
        if same:
            for k, v in prev.get("weight_sets", {}).items():
                manifest["weight_sets"].setdefault(k, v)
    tmp = old + ".tmp"
    with open(tmp, "w") as f:
        f.write(dump_json(manifest))
        f.write("\n")
    os.replace(tmp, old)


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
    graphs = export_graphs(out, emods, specs)

    tensors = {}
    for k, v in sd.items():
        tensors[k] = {"shape": list(v.shape), "dtype": "float32", "init": init_spec(k, tuple(v.shape))}
    weight_sets = write_weight_set(out, sd, model_name, meta, weight_set) if write_weights else {}
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
        "patch_filters": "conv_proj.weight",
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
    write_manifest(out, manifest, ("image_size", "patch_size", "hidden_dim", "num_layers"))
    return manifest


# ---------------------------------------------------------------------------------------
# Attentionless models: timm's MLP-Mixer (`MlpMixer`) and Melas-Kyriazi's feed-forward-only
# ViT (`LinearVisionTransformer` of github.com/lukemelas/do-you-even-need-attention). Their
# graphs take the ViT's switches, so the runtime chains them unchanged: use_ln1/use_attn/use_res1
# are the token-mixing sub-block (its norm, its MLP across patches, its residual) and
# use_ln2/use_mlp/use_res2 the channel sub-block, whichever order the block applies them in.

TOKEN_FIRST, CHANNEL_FIRST = "token_first", "channel_first"
HALF = [0.5, 0.5, 0.5]


def _mixer(patch, layers, hidden):
    return dict(arch="mixer", patch_size=patch, num_layers=layers, hidden_dim=hidden, tokens_mlp_dim=hidden // 2,
                channels_mlp_dim=4 * hidden, order=TOKEN_FIRST)


def _ffvit(patch, layers, hidden):
    # their LinearBlock: Mlp(dim, 4 dim) over channels, Mlp(num_tokens, 4 num_tokens) over tokens
    return dict(arch="ffvit", patch_size=patch, num_layers=layers, hidden_dim=hidden, tokens_mlp_dim=None,
                channels_mlp_dim=4 * hidden, order=CHANNEL_FIRST)


# timm's mixer_*_224 entry points (mlp_ratio (0.5, 4.0)) and the authors' linear_tiny / linear_base
ATTNLESS_ARCHS: Dict[str, dict] = {
    "mixer_s32_224": _mixer(32, 8, 512),
    "mixer_s16_224": _mixer(16, 8, 512),
    "mixer_b32_224": _mixer(32, 12, 768),
    "mixer_b16_224": _mixer(16, 12, 768),
    "mixer_l32_224": _mixer(32, 24, 1024),
    "mixer_l16_224": _mixer(16, 24, 1024),
    "linear_tiny": _ffvit(16, 12, 192),
    "linear_base": _ffvit(16, 12, 768),
}
ATTNLESS_NOTES = {
    "mixer_b16_224": "timm checkpoints .goog_in21k_ft_in1k (mean/std 0.5), .goog_in21k (21843 classes); "
                     ".miil_* need --mean 0,0,0 --std 1,1,1",
    "mixer_l16_224": "timm checkpoints .goog_in21k_ft_in1k (mean/std 0.5), .goog_in21k (21843 classes)",
    "linear_tiny": "FF-tiny, 61.4% top-1 (release linear-tiny-checkpoint.pth: its 'model' state dict)",
    "linear_base": "FF-base, 74.9% top-1 (release linear-base-checkpoint.pth: its 'model' state dict)",
}
# tensor-name roles: the token sub-block's norm and MLP, the channel sub-block's, stem and head
ATTNLESS_KEYS = {
    "mixer": dict(tok_ln="norm1", tok_mlp="mlp_tokens", ch_ln="norm2", ch_mlp="mlp_channels",
                  tok_norm_over_tokens=False, proj="stem.proj", cls=None),
    "ffvit": dict(tok_ln="norm2", tok_mlp="mlp2", ch_ln="norm1", ch_mlp="mlp1",
                  tok_norm_over_tokens=True, proj="patch_embed.proj", cls="cls_token"),
}
FF_POS = ["pos_encoding.pos_embed", "pos_encoding.cls_pos_embed"]
MIX_SAVED = ["s_x1", "s_mean1", "s_rstd1", "s_z1", "s_mean2", "s_rstd2", "s_z2"]
ATTNLESS_ABLATIONS = ABLATIONS + [
    {"use_ln1": 1.0, "use_attn": 0.0, "use_res1": 1.0, "use_ln2": 1.0, "use_mlp": 0.0, "use_res2": 1.0},
    {"use_ln1": 0.0, "use_attn": 1.0, "use_res1": 1.0, "use_ln2": 1.0, "use_mlp": 1.0, "use_res2": 0.0},
]


def switch_meaning(arch: str) -> Dict[str, str]:
    """What each switch removes, per architecture (written to the manifest and printed by --list)."""
    if arch == "vit":
        return {"use_pos": "encoder.pos_embedding (stem)", "use_ln1": "ln_1", "use_attn": "self_attention",
                "use_res1": "the residual around self-attention", "use_ln2": "ln_2", "use_mlp": "mlp",
                "use_res2": "the residual around the MLP"}
    k = ATTNLESS_KEYS[arch]
    over = "the tokens, per channel" if k["tok_norm_over_tokens"] else "channels"
    out = {"use_pos": "pos_encoding.pos_embed + pos_encoding.cls_pos_embed (stem)"} if arch == "ffvit" else {}
    out.update({
        "use_ln1": f"blocks.i.{k['tok_ln']}: the LayerNorm (over {over}) before the token-mixing MLP",
        "use_attn": f"blocks.i.{k['tok_mlp']}: the token-mixing MLP (across patches"
                    + (", class token included)" if k["cls"] else ")") + ", in place of attention",
        "use_res1": "the residual around the token-mixing sub-block",
        "use_ln2": f"blocks.i.{k['ch_ln']}: the LayerNorm (over channels) before the channel MLP",
        "use_mlp": f"blocks.i.{k['ch_mlp']}: the channel MLP",
        "use_res2": "the residual around the channel sub-block",
    })
    return out


# --- graph modules --------------------------------------------------------------------


def select(f: torch.Tensor, on: torch.Tensor, off: torch.Tensor) -> torch.Tensor:
    """f * on + (1 - f) * off: exactly `on` for f = 1 and `off` for f = 0. (mix() computes
    off + f * (on - off), which for f = 1 rounds on - off: an absolute error of about eps * |off|, large
    against a small op output such as an untrained MLP's beside its O(1) input.)"""
    return f * on + (1.0 - f) * off


def sub_fwd(x, ln_w, ln_b, w1, b1, w2, b2, use_ln, use_mlp, use_res, norm_t: bool, mlp_t: bool):
    """A residual sub-block on x [1,n,D]: LayerNorm, then a GELU MLP, then the residual; norm_t / mlp_t
    apply the norm / the MLP over the token axis (on x transposed). Returns y, mean, rstd, z."""
    xn = x.transpose(1, 2) if norm_t else x
    # A norm over the tokens normalizes each channel across the patches, where a channel's offset
    # (its bias, its position-independent part) can dwarf its spread: there onnxruntime's
    # LayerNormalization, which takes the variance as E[x²] - E[x]² in float32, loses digits, so that
    # norm is exported as plain two-pass ops (mean, then the mean of the centred squares).
    l, mean, rstd = ln_fwd(xn, ln_w, ln_b) if norm_t else LayerNormStats.apply(xn, ln_w, ln_b)
    h = select(use_ln, l, xn)
    hm = h.transpose(1, 2) if norm_t != mlp_t else h
    z = F.linear(hm, w1, b1)
    m = F.linear(F.gelu(z), w2, b2)
    a = select(use_mlp, m, hm)
    a = a.transpose(1, 2) if mlp_t else a
    return a + use_res * x, mean, rstd, z


def sub_vjp(dy, x, mean, rstd, z, ln_w, w1, w2, use_ln, use_mlp, use_res, norm_t: bool, mlp_t: bool):
    """Input gradient of sub_fwd."""
    dx = use_res * dy
    da = dy.transpose(1, 2) if mlp_t else dy
    du = torch.matmul(use_mlp * da, w2)
    dz = du * gelu_grad(z)
    dhm = (1.0 - use_mlp) * da + torch.matmul(dz, w1)
    dh = dhm.transpose(1, 2) if norm_t != mlp_t else dhm
    xn = x.transpose(1, 2) if norm_t else x
    dxn = (1.0 - use_ln) * dh + ln_bwd(dh, xn, mean, rstd, use_ln * ln_w)
    return dx + (dxn.transpose(1, 2) if norm_t else dxn)


class MixBlockFwd(Params):
    """Attentionless block: token-mixing sub-block (switches 1) and channel sub-block (switches 2)."""

    def __init__(self, tensors, arch: str, order: str):
        super().__init__(tensors)
        self.k, self.order = ATTNLESS_KEYS[arch], order

    def _sub(self, group, x, sw):
        k = self.k
        ln, mlp = (k["tok_ln"], k["tok_mlp"]) if group == 1 else (k["ch_ln"], k["ch_mlp"])
        tokens = group == 1
        return sub_fwd(x, self.w(f"{ln}.weight"), self.w(f"{ln}.bias"), self.w(f"{mlp}.fc1.weight"),
                       self.w(f"{mlp}.fc1.bias"), self.w(f"{mlp}.fc2.weight"), self.w(f"{mlp}.fc2.bias"), *sw,
                       norm_t=tokens and k["tok_norm_over_tokens"], mlp_t=tokens)

    def _sub_vjp(self, group, dy, x, mean, rstd, z, sw):
        k = self.k
        ln, mlp = (k["tok_ln"], k["tok_mlp"]) if group == 1 else (k["ch_ln"], k["ch_mlp"])
        tokens = group == 1
        return sub_vjp(dy, x, mean, rstd, z, self.w(f"{ln}.weight"), self.w(f"{mlp}.fc1.weight"),
                       self.w(f"{mlp}.fc2.weight"), *sw, norm_t=tokens and k["tok_norm_over_tokens"], mlp_t=tokens)

    def forward(self, x, use_ln1, use_attn, use_res1, use_ln2, use_mlp, use_res2):
        sw1, sw2 = (use_ln1, use_attn, use_res1), (use_ln2, use_mlp, use_res2)
        if self.order == TOKEN_FIRST:
            x1, mean1, rstd1, z1 = self._sub(1, x, sw1)
            y, mean2, rstd2, z2 = self._sub(2, x1, sw2)
        else:
            x1, mean2, rstd2, z2 = self._sub(2, x, sw2)
            y, mean1, rstd1, z1 = self._sub(1, x1, sw1)
        return y, x1, mean1, rstd1, z1, mean2, rstd2, z2


class MixBlockVjp(MixBlockFwd):
    takes_x = True

    def forward(self, dy, use_ln1, use_attn, use_res1, use_ln2, use_mlp, use_res2,
                x, x1, mean1, rstd1, z1, mean2, rstd2, z2):
        sw1, sw2 = (use_ln1, use_attn, use_res1), (use_ln2, use_mlp, use_res2)
        if self.order == TOKEN_FIRST:
            dx1 = self._sub_vjp(2, dy, x1, mean2, rstd2, z2, sw2)
            return self._sub_vjp(1, dx1, x, mean1, rstd1, z1, sw1)
        dx1 = self._sub_vjp(1, dy, x1, mean1, rstd1, z1, sw1)
        return self._sub_vjp(2, dx1, x, mean2, rstd2, z2, sw2)


class MixerStemFwd(Params):
    """image [1,3,H,W] -> tokens [1,n,D]: the patch convolution alone (no class token, no position)."""

    def __init__(self, tensors, side: int, proj: str = "stem.proj"):
        super().__init__(tensors)
        self.proj, self.side = proj, side
        shape = tensors[f"{proj}.weight"].shape
        self.d, self.p = int(shape[0]), int(shape[-1])

    def embed(self, x):
        t = F.conv2d(x, self.w(f"{self.proj}.weight"), self.w(f"{self.proj}.bias"), stride=self.p)
        return t.reshape(1, self.d, self.side * self.side).permute(0, 2, 1)

    def forward(self, x):
        return self.embed(x)


class MixerStemVjp(MixerStemFwd):
    def forward(self, dy):
        dt = dy.permute(0, 2, 1).reshape(1, self.d, self.side, self.side)
        return F.conv_transpose2d(dt, self.w(f"{self.proj}.weight"), stride=self.p)


class FFStemFwd(MixerStemFwd):
    """image -> tokens [1,1+n,D]: patch convolution, class token, position embedding (switch use_pos)."""

    def __init__(self, tensors, side: int):
        super().__init__(tensors, side, "patch_embed.proj")

    def forward(self, x, use_pos):
        t = torch.cat([self.w("cls_token"), self.embed(x)], dim=1)
        pe = self.w("pos_encoding.pos_embed").reshape(1, self.d, self.side * self.side).permute(0, 2, 1)
        pos = torch.cat([self.w("pos_encoding.cls_pos_embed"), pe], dim=1)
        return t + use_pos * pos


class FFStemVjp(MixerStemVjp):
    def __init__(self, tensors, side: int):
        super().__init__(tensors, side, "patch_embed.proj")

    def forward(self, dy):
        return super().forward(dy[:, 1:, :])


class PoolHeadFwd(Params):
    """tokens -> logits: final LayerNorm, mean over tokens, linear head (timm's MlpMixer)."""

    def forward(self, x):
        l, mean, rstd = LayerNormStats.apply(x, self.w("norm.weight"), self.w("norm.bias"))
        return F.linear(l.mean(1), self.w("head.weight"), self.w("head.bias")), mean, rstd


class PoolHeadVjp(Params):
    takes_x = True

    def __init__(self, tensors, seq_len):
        super().__init__(tensors)
        self.seq_len = seq_len

    def forward(self, dy, x, mean, rstd):
        dp = torch.matmul(dy, self.w("head.weight")).unsqueeze(1) * (1.0 / self.seq_len)  # [1,1,D]
        return ln_bwd(dp, x, mean, rstd, self.w("norm.weight"))  # broadcast over the tokens


class ClsHeadFwd(Params):
    """tokens -> logits: final LayerNorm of the class token, linear head (the FF-only ViT)."""

    def forward(self, x):
        c, mean, rstd = LayerNormStats.apply(x[:, 0:1, :], self.w("norm.weight"), self.w("norm.bias"))
        return F.linear(c[:, 0, :], self.w("head.weight"), self.w("head.bias")), mean, rstd


class ClsHeadVjp(PoolHeadVjp):
    def forward(self, dy, x, mean, rstd):
        dc = torch.matmul(dy, self.w("head.weight")).unsqueeze(1)
        d0 = ln_bwd(dc, x[:, 0:1, :], mean, rstd, self.w("norm.weight"))
        return F.pad(d0, (0, 0, 0, self.seq_len - 1))


# --- reference models (plain nn.Modules, the authors' structure and state-dict names) --


class RefMlp(nn.Module):
    """timm's Mlp at inference (dropout 0): fc1, exact GELU, fc2."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class RefPatchEmbed(nn.Module):
    """timm's PatchEmbed (no norm) / the authors' PatchEmbed: one strided convolution `proj`."""

    def __init__(self, patch: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class RefMixerBlock(nn.Module):
    """timm's MixerBlock (drop_path 0); order channel_first swaps its two sub-blocks."""

    def __init__(self, dim, seq_len, tokens_dim, channels_dim, order):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp_tokens = RefMlp(seq_len, tokens_dim)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp_channels = RefMlp(dim, channels_dim)
        self.order = order

    def forward(self, x):
        if self.order == TOKEN_FIRST:
            x = x + self.mlp_tokens(self.norm1(x).transpose(1, 2)).transpose(1, 2)
            x = x + self.mlp_channels(self.norm2(x))
        else:
            x = x + self.mlp_channels(self.norm2(x))
            x = x + self.mlp_tokens(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x

    def token_part(self, x, ln, mlp, res):
        h = self.norm1(x) if ln else x
        m = self.mlp_tokens(h.transpose(1, 2)).transpose(1, 2) if mlp else h
        return m + x if res else m

    def channel_part(self, x, ln, mlp, res):
        h = self.norm2(x) if ln else x
        m = self.mlp_channels(h) if mlp else h
        return m + x if res else m


class RefLinearBlock(nn.Module):
    """The authors' LinearBlock (drop_path 0): mlp1/norm1 over channels, then mlp2/norm2 over tokens
    (norm2 normalizes each channel across the tokens); order token_first swaps the two."""

    def __init__(self, dim, num_tokens, tokens_dim, channels_dim, order):
        super().__init__()
        self.mlp1 = RefMlp(dim, channels_dim)
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp2 = RefMlp(num_tokens, tokens_dim)
        self.norm2 = nn.LayerNorm(num_tokens, eps=LN_EPS)
        self.order = order

    def forward(self, x):
        if self.order == CHANNEL_FIRST:
            x = x + self.mlp1(self.norm1(x))
            x = x.transpose(-2, -1)
            x = x + self.mlp2(self.norm2(x))
            x = x.transpose(-2, -1)
        else:
            x = x.transpose(-2, -1)
            x = x + self.mlp2(self.norm2(x))
            x = x.transpose(-2, -1)
            x = x + self.mlp1(self.norm1(x))
        return x

    def token_part(self, x, ln, mlp, res):
        u = x.transpose(-2, -1)
        h = self.norm2(u) if ln else u
        m = self.mlp2(h) if mlp else h
        return (m + u if res else m).transpose(-2, -1)

    def channel_part(self, x, ln, mlp, res):
        h = self.norm1(x) if ln else x
        m = self.mlp1(h) if mlp else h
        return m + x if res else m


def _trunc_normal_tf_(t: torch.Tensor, std: float) -> None:
    """timm's trunc_normal_tf_: a standard normal truncated to [-2, 2], then scaled by std."""
    nn.init.trunc_normal_(t, 0.0, 1.0, -2.0, 2.0)
    t.mul_(std)


class RefMixer(nn.Module):
    """timm's MlpMixer (global_pool 'avg', stem_norm False, drop rates 0) with its state-dict names."""

    def __init__(self, cfg: dict):
        super().__init__()
        d, p, g = cfg["hidden_dim"], cfg["patch_size"], cfg["image_size"] // cfg["patch_size"]
        self.cfg = cfg
        self.stem = RefPatchEmbed(p, d)
        self.blocks = nn.ModuleList([RefMixerBlock(d, g * g, cfg["tokens_mlp_dim"], cfg["channels_mlp_dim"],
                                                   cfg["order"]) for _ in range(cfg["num_layers"])])
        self.norm = nn.LayerNorm(d, eps=LN_EPS)
        self.head = nn.Linear(d, cfg["num_classes"])
        # timm's mlp_mixer._init_weights (flax=False, nlhb=False), module by module
        with torch.no_grad():
            for name, m in self.named_modules():
                if isinstance(m, nn.Linear):
                    if name.startswith("head"):
                        nn.init.zeros_(m.weight)
                        nn.init.zeros_(m.bias)
                    else:
                        nn.init.xavier_uniform_(m.weight)
                        nn.init.normal_(m.bias, std=1e-6) if "mlp" in name else nn.init.zeros_(m.bias)
                elif isinstance(m, nn.Conv2d):  # lecun_normal_
                    fan_in = m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3]
                    _trunc_normal_tf_(m.weight, math.sqrt(1.0 / fan_in) / 0.87962566103423978)
                    nn.init.zeros_(m.bias)
                elif isinstance(m, nn.LayerNorm):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)

    def embed(self, x, use_pos=1.0):
        return self.stem(x)

    def pool(self, x):
        return self.head(self.norm(x).mean(dim=1))

    def forward(self, x):  # forward_features + forward_head
        x = self.stem(x)
        for b in self.blocks:
            x = b(x)
        return self.pool(x)


class RefPosEncoding(nn.Module):
    """The authors' LearnedPositionalEncoding at its own size (no interpolation)."""

    def __init__(self, side: int, dim: int):
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, dim, side, side))
        self.cls_pos_embed = nn.Parameter(torch.zeros(1, 1, dim))


class RefLinearViT(nn.Module):
    """The authors' LinearVisionTransformer (learned positional encoding, drop rates 0)."""

    def __init__(self, cfg: dict):
        super().__init__()
        d, p, g = cfg["hidden_dim"], cfg["patch_size"], cfg["image_size"] // cfg["patch_size"]
        self.cfg = cfg
        self.patch_embed = RefPatchEmbed(p, d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_encoding = RefPosEncoding(g, d)
        self.blocks = nn.ModuleList([RefLinearBlock(d, g * g + 1, cfg["tokens_mlp_dim"], cfg["channels_mlp_dim"],
                                                    cfg["order"]) for _ in range(cfg["num_layers"])])
        self.norm = nn.LayerNorm(d, eps=LN_EPS)
        self.head = nn.Linear(d, cfg["num_classes"])
        # their init: timm's trunc_normal_ (absolute bounds ±2) for positions, class token and Linear
        # weights, zero Linear biases, LayerNorm 1/0; the convolution keeps PyTorch's default init
        with torch.no_grad():
            for t in (self.pos_encoding.pos_embed, self.pos_encoding.cls_pos_embed, self.cls_token):
                nn.init.trunc_normal_(t, std=0.02)
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    nn.init.trunc_normal_(m.weight, std=0.02)
                    nn.init.zeros_(m.bias)
                elif isinstance(m, nn.LayerNorm):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)

    def embed(self, x, use_pos=1.0):
        t = self.patch_embed.proj(x)
        x = torch.cat((self.cls_token.expand(t.shape[0], -1, -1), t.flatten(2).transpose(1, 2)), dim=1)
        pos = torch.cat([self.pos_encoding.cls_pos_embed, self.pos_encoding.pos_embed.flatten(2).transpose(1, 2)],
                        dim=1)
        return x + pos if use_pos else x

    def pool(self, x):
        return self.head(self.norm(x)[:, 0])

    def forward(self, x):  # forward_features + head
        x = self.embed(x)
        for b in self.blocks:
            x = b(x)
        return self.pool(x)


def attnless_ref_block(block: nn.Module, x: torch.Tensor, sw: Dict[str, float]) -> torch.Tensor:
    """A reference block with ablation switches: each switch removes the same op whatever the order."""
    tok = lambda t: block.token_part(t, sw["use_ln1"], sw["use_attn"], sw["use_res1"])  # noqa: E731
    ch = lambda t: block.channel_part(t, sw["use_ln2"], sw["use_mlp"], sw["use_res2"])  # noqa: E731
    return ch(tok(x)) if block.order == TOKEN_FIRST else tok(ch(x))


def attnless_init_spec(cfg: dict, key: str, shape: Tuple[int, ...]) -> dict:
    """The init distribution of a tensor of an untrained attentionless model (see the Ref* classes)."""
    leaf = key.split(".")[-1]
    zero, one = {"kind": "constant", "value": 0.0}, {"kind": "constant", "value": 1.0}
    if len(key.split(".")) > 1 and key.split(".")[-2].startswith("norm"):  # LayerNorms
        return one if leaf == "weight" else zero
    if cfg["arch"] == "mixer":
        if key == "stem.proj.weight":  # lecun_normal_: trunc_normal_tf_(std = sqrt(1/fan_in) / .8796...)
            std = math.sqrt(1.0 / (shape[1] * shape[2] * shape[3])) / 0.87962566103423978
            return {"kind": "trunc_normal", "mean": 0.0, "std": std, "a": -2.0 * std, "b": 2.0 * std}
        if key.startswith("head.") or key == "stem.proj.bias":
            return zero
        if leaf == "weight":  # xavier_uniform_
            b = math.sqrt(6.0 / (shape[0] + shape[1]))
            return {"kind": "uniform", "low": -b, "high": b}
        return {"kind": "normal", "mean": 0.0, "std": 1e-6}  # biases of the Linears named *mlp*
    if key.startswith("patch_embed.proj."):
        # nn.Conv2d's default init: kaiming_uniform_(a=sqrt(5)) and bias, both U(±1/sqrt(fan_in))
        b = 1.0 / math.sqrt(3 * cfg["patch_size"] ** 2)
        return {"kind": "uniform", "low": -b, "high": b}
    if leaf == "bias":
        return zero
    return {"kind": "trunc_normal", "mean": 0.0, "std": 0.02, "a": -2.0, "b": 2.0}


# --- building, checking, writing ------------------------------------------------------


def imagenet_categories() -> List[str]:
    from torchvision.models import ViT_B_16_Weights

    return list(ViT_B_16_Weights.IMAGENET1K_V1.meta["categories"])


def attnless_family(model_name: str) -> Optional[str]:
    """'mixer' or 'ffvit' for an attentionless model name, else None."""
    if model_name in ("mixer", "ffvit"):
        return model_name
    return ATTNLESS_ARCHS[model_name]["arch"] if model_name in ATTNLESS_ARCHS else None


def finish_cfg(cfg: dict, image_size: int) -> dict:
    """Adds image size, token count and defaults (classes 1000; the FF-only ViT's 4x MLP widths)."""
    cfg = dict(cfg, image_size=image_size)
    g = image_size // cfg["patch_size"]
    cfg["seq_length"] = g * g + (1 if cfg["arch"] == "ffvit" else 0)
    cfg.setdefault("num_classes", 1000)
    if cfg.get("channels_mlp_dim") is None:
        cfg["channels_mlp_dim"] = 4 * cfg["hidden_dim"]
    if cfg.get("tokens_mlp_dim") is None:
        cfg["tokens_mlp_dim"] = 4 * cfg["seq_length"]
    return cfg


def infer_attnless_cfg(sd: Dict[str, torch.Tensor], arch: str, path: str) -> dict:
    """The configuration a timm MlpMixer / authors' LinearVisionTransformer state dict was made with."""
    k = ATTNLESS_KEYS[arch]
    need = [f"{k['proj']}.weight", f"blocks.0.{k['tok_mlp']}.fc1.weight", f"blocks.0.{k['ch_mlp']}.fc1.weight",
            f"blocks.0.{k['tok_ln']}.weight", "head.weight"] + (FF_POS if arch == "ffvit" else [])
    lacking = [n for n in need if n not in sd]
    if lacking:
        what = "timm MlpMixer" if arch == "mixer" else "LinearVisionTransformer (do-you-even-need-attention)"
        raise SystemExit(f"error: checkpoint {path!r} lacks {', '.join(repr(n) for n in lacking)}: not a {what} "
                         "state dict")
    w = sd[f"{k['proj']}.weight"]
    cfg = dict(arch=arch, hidden_dim=int(w.shape[0]), patch_size=int(w.shape[-1]),
               tokens_mlp_dim=int(sd[f"blocks.0.{k['tok_mlp']}.fc1.weight"].shape[0]),
               channels_mlp_dim=int(sd[f"blocks.0.{k['ch_mlp']}.fc1.weight"].shape[0]),
               num_classes=int(sd["head.weight"].shape[0]))
    cfg["num_layers"] = sum(1 for i in range(10**4) if f"blocks.{i}.{k['tok_ln']}.weight" in sd
                            and (i == 0 or f"blocks.{i - 1}.{k['tok_ln']}.weight" in sd))
    seq = int(sd[f"blocks.0.{k['tok_mlp']}.fc1.weight"].shape[1])
    n = seq - (1 if arch == "ffvit" else 0)
    g = int(round(math.sqrt(n)))
    if g * g != n:
        raise SystemExit(f"error: checkpoint {path!r} mixes {seq} tokens: not a square grid of patches")
    if arch == "ffvit" and tuple(sd["pos_encoding.pos_embed"].shape[2:]) != (g, g):
        raise SystemExit(f"error: checkpoint {path!r} has a {tuple(sd['pos_encoding.pos_embed'].shape[2:])} position "
                         f"embedding for a {g}x{g} grid: interpolated position embeddings are not supported")
    cfg["image_size"] = g * cfg["patch_size"]
    return cfg


def build_attnless(model_name: str, weights: str, seed: int, image_size: Optional[int], arch: Optional[dict]):
    """Returns (reference model in eval mode, metadata dict) for an attentionless model."""
    family = attnless_family(model_name)
    preset = dict(ATTNLESS_ARCHS.get(model_name, {}))
    given = dict(arch or {})
    meta = {"weights": weights, "mean": HALF if family == "mixer" else IMAGENET_MEAN,
            "std": HALF if family == "mixer" else IMAGENET_STD, "categories": None}
    if weights == "untrained":
        cfg = dict(preset, **given) if preset else dict(given, arch=family)
        cfg.setdefault("order", TOKEN_FIRST if family == "mixer" else CHANNEL_FIRST)
        cfg = finish_cfg(cfg, image_size or 224)
        torch.manual_seed(seed)
        model = (RefMixer if family == "mixer" else RefLinearViT)(cfg)
        meta["seed"] = seed
    elif os.path.exists(weights):
        sd = load_checkpoint(weights)
        cfg = infer_attnless_cfg(sd, family, weights)
        cfg["order"] = given.pop("order", preset.get("order", TOKEN_FIRST if family == "mixer" else CHANNEL_FIRST))
        want = {k: v for k, v in {**preset, **given}.items() if k not in ("arch", "order") and v is not None}
        if image_size:
            want["image_size"] = image_size
        wrong = [f"{k} {cfg.get(k)} (expected {v})" for k, v in want.items() if cfg.get(k) != v]
        if wrong:
            raise SystemExit(f"error: checkpoint {weights!r} does not fit {model_name}: it has {', '.join(wrong)}")
        cfg = finish_cfg(cfg, cfg["image_size"])
        model = (RefMixer if family == "mixer" else RefLinearViT)(cfg)
        try:
            model.load_state_dict({k: v.float() for k, v in sd.items()})
        except RuntimeError as err:
            raise SystemExit(f"error: checkpoint {weights!r} does not load into {model_name}: "
                             f"{str(err).splitlines()[0]} {' '.join(str(err).split()[-40:])}") from None
        meta["weights"] = os.path.splitext(os.path.basename(weights))[0]
    else:
        raise SystemExit(f"error: --weights {weights!r}: {model_name} takes 'untrained' or a checkpoint file "
                         "(.pth or .safetensors state dict)")
    if cfg["num_classes"] == 1000:
        meta["categories"] = imagenet_categories()
    model.eval()
    return model, meta


def convert_attnless(model, meta: dict, model_name: str, out: str, check: bool = True, write_weights: bool = True,
                     weight_set: Optional[str] = None, log: Callable[[str], None] = print, tol: float = 1e-5,
                     check_layers: int = 10**9) -> dict:
    """convert() for RefMixer / RefLinearViT: out/manifest.json, out/graphs/*.onnx, the weight set."""
    torch.set_grad_enabled(True)
    cfg = model.cfg
    arch, order = cfg["arch"], cfg["order"]
    keys = ATTNLESS_KEYS[arch]
    ff = arch == "ffvit"
    sd = {k: v.detach().float() for k, v in model.state_dict().items()}
    d, p, size, layers, seq = cfg["hidden_dim"], cfg["patch_size"], cfg["image_size"], cfg["num_layers"], \
        cfg["seq_length"]
    side, num_classes = size // p, cfg["num_classes"]
    os.makedirs(os.path.join(out, "graphs"), exist_ok=True)
    head_keys = ["norm.weight", "norm.bias", "head.weight", "head.bias"]
    stem_keys = [k for k in sd if not k.startswith("blocks.") and k not in head_keys]
    block_local = [k[len("blocks.0."):] for k in sd if k.startswith("blocks.0.")]
    stem_switches = ["use_pos"] if ff else []

    def modules(stem_t, block_t, head_t) -> Dict[str, nn.Module]:
        return {
            "stem.fwd": FFStemFwd(stem_t, side) if ff else MixerStemFwd(stem_t, side),
            "stem.vjp": FFStemVjp(stem_t, side) if ff else MixerStemVjp(stem_t, side),
            "block.fwd": MixBlockFwd(block_t, arch, order), "block.vjp": MixBlockVjp(block_t, arch, order),
            "head.fwd": ClsHeadFwd(head_t) if ff else PoolHeadFwd(head_t),
            "head.vjp": ClsHeadVjp(head_t, seq) if ff else PoolHeadVjp(head_t, seq),
        }

    block_t = lambda i: {k: sd[f"blocks.{i}.{k}"] for k in block_local}  # noqa: E731
    stem_t, head_t = {k: sd[k] for k in stem_keys}, {k: sd[k] for k in head_keys}
    mods = modules(stem_t, block_t(0), head_t)
    one = torch.tensor(1.0)
    sws = [one] * len(SWITCHES)
    x_img = torch.rand(1, 3, size, size)
    x_tok = torch.randn(1, seq, d)

    if check:
        log(f"checking {model_name} ({arch}, {order}, {meta['weights']}) against torch.autograd on the reference "
            f"module, tolerance {tol:g} relative")
        torch.manual_seed(1234)
        worst = 0.0
        for use_pos in ((1.0, 0.0) if ff else (1.0,)):
            args = (torch.tensor(use_pos),) if ff else ()
            label = f"stem use_pos={use_pos:g}" if ff else "stem"
            worst = max(worst, check_piece(label, mods["stem.fwd"], mods["stem.vjp"], args, (),
                                           lambda x: model.embed(x, use_pos), torch.rand(1, 3, size, size), None,
                                           tol, log))
        for i, block in enumerate(model.blocks):
            if i >= check_layers:
                break
            bt = block_t(i)
            fwd, vjp = MixBlockFwd(bt, arch, order), MixBlockVjp(bt, arch, order)
            for sw in ATTNLESS_ABLATIONS if i == 0 else ATTNLESS_ABLATIONS[:1]:
                st = [torch.tensor(sw[s]) for s in SWITCHES]
                off = ",".join(s[4:] for s in SWITCHES if not sw[s]) or "none"
                worst = max(worst, check_piece(f"block {i} off={off}", fwd, vjp, st, st,
                                               lambda x: attnless_ref_block(block, x, sw), torch.randn(1, seq, d),
                                               None, tol, log))
            if i == 0:
                # with every switch on, the graph must equal the reference block's own forward
                x = torch.randn(1, seq, d)
                with torch.no_grad():
                    a, r = rel_err(fwd(x, *sws)[0], block(x))
                log(f"  {'block 0 vs reference block':<28} forward max abs {a:.2e} rel {r:.2e}")
                if r > tol:
                    raise SystemExit(f"error: block 0 differs from the reference block by {r:.2e}")
        feats = (lambda x: model.norm(x)[:, 0]) if ff else (lambda x: model.norm(x).mean(dim=1))  # noqa: E731
        if sd["head.weight"].abs().max() == 0:
            # timm initialises the mixer head to zero; check the graph math with a random head
            ht = dict(head_t)
            ht["head.weight"] = torch.randn_like(ht["head.weight"]) * 0.02
            ht["head.bias"] = torch.randn_like(ht["head.bias"]) * 0.02
            hm = modules(stem_t, block_t(0), ht)
            hf, hv = hm["head.fwd"], hm["head.vjp"]
            ref = lambda x: F.linear(feats(x), ht["head.weight"], ht["head.bias"])  # noqa: E731
        else:
            hf, hv, ref = mods["head.fwd"], mods["head.vjp"], model.pool
        worst = max(worst, check_piece("head", hf, hv, (), (), ref, torch.randn(1, seq, d), None, tol, log))
        # the whole chain with the graphs' math against the reference model's own forward (with the
        # random head of the head check where the model's head is zero)
        x = torch.rand(1, 3, size, size)
        with torch.no_grad():
            t = mods["stem.fwd"](x, one) if ff else mods["stem.fwd"](x)
            for i in range(layers):
                t = MixBlockFwd(block_t(i), arch, order)(t, *sws)[0]
            logits = hf(t)[0]
            if hf is mods["head.fwd"]:
                want = model(x)
            else:
                u = model.embed(x)
                for b in model.blocks:
                    u = b(u)
                want = ref(u)
            a, r = rel_err(logits, want)
        log(f"  {'whole model logits':<28} max abs {a:.2e} rel {r:.2e}")
        if r > tol:
            raise SystemExit(f"error: chained logits differ from the reference model by {r:.2e}")
        worst = max(worst, r)
        if meta["weights"] == "untrained":
            check_init(sd, log, lambda k, s: attnless_init_spec(cfg, k, s))
        log(f"check passed: worst relative error {worst:.2e}")

    specs = {
        "stem.fwd": ((x_img, one) if ff else (x_img,), ["x"] + stem_switches, ["y"]),
        "stem.vjp": ((torch.randn(1, seq, d),), ["dy"], ["dx"]),
        "block.fwd": ((x_tok, *sws), ["x"] + SWITCHES, ["y"] + MIX_SAVED),
        "head.fwd": ((x_tok,), ["x"], ["y", "s_mean", "s_rstd"]),
    }
    with torch.no_grad():
        saved_block = mods["block.fwd"](x_tok, *sws)[1:]
        saved_head = mods["head.fwd"](x_tok)[1:]
    specs["block.vjp"] = ((x_tok, *sws, x_tok, *saved_block), ["dy"] + SWITCHES + ["x"] + MIX_SAVED, ["dx"])
    specs["head.vjp"] = ((torch.randn(1, num_classes), x_tok, *saved_head), ["dy", "x", "s_mean", "s_rstd"], ["dx"])
    # random, pairwise-distinct export values (see convert())
    gen = torch.Generator().manual_seed(0)
    rnd = lambda t: {k: torch.randn(v.shape, generator=gen) for k, v in t.items()}  # noqa: E731
    graphs = export_graphs(out, modules(rnd(stem_t), rnd(block_t(0)), rnd(head_t)), specs)

    tensors = {k: {"shape": list(v.shape), "dtype": "float32", "init": attnless_init_spec(cfg, k, tuple(v.shape))}
               for k, v in sd.items()}
    weight_sets = write_weight_set(out, sd, model_name, meta, weight_set) if write_weights else {}
    manifest = {
        "format": "vitrep-model/1",
        "name": model_name,
        "architecture": arch,
        "image_size": size,
        "patch_size": p,
        "hidden_dim": d,
        "num_layers": layers,
        "tokens_mlp_dim": cfg["tokens_mlp_dim"],
        "channels_mlp_dim": cfg["channels_mlp_dim"],
        "block_order": order,
        "class_token": ff,
        "seq_length": seq,
        "num_classes": num_classes,
        "layer_norm_eps": LN_EPS,
        "patch_filters": f"{keys['proj']}.weight",
        "switch_meaning": switch_meaning(arch),
        "input": {"shape": [1, 3, size, size], "mean": meta["mean"], "std": meta["std"],
                  "range": [0, 1], "layout": "NCHW"},
        "opset": OPSET,
        "converter": {"torch": torch.__version__, "script": "tools/convert.py"},
        "external_data": EXTERNAL,
        "graphs": graphs,
        "layers": [{"name": "input", "graph": "stem", "prefix": "", "switches": stem_switches}]
        + [{"name": f"block_{i}", "graph": "block", "prefix": f"blocks.{i}.", "switches": SWITCHES}
           for i in range(layers)]
        + [{"name": "logits", "graph": "head", "prefix": "", "switches": []}],
        "tensors": tensors,
        "weight_sets": weight_sets,
        "categories": meta["categories"],
    }
    write_manifest(out, manifest, ("architecture", "image_size", "patch_size", "hidden_dim", "num_layers",
                                   "tokens_mlp_dim", "channels_mlp_dim", "block_order", "num_classes"))
    return manifest


def parse_attnless_arch(ap, text: Optional[str], model_name: str, untrained: bool = True) -> dict:
    """--arch for the attentionless models: patch, layers, hidden, tokens_mlp, channels_mlp, classes, order
    (a checkpoint's sizes come from its tensors: what --arch gives must agree)."""
    family = attnless_family(model_name)
    keys = {"patch": "patch_size", "layers": "num_layers", "hidden": "hidden_dim", "tokens_mlp": "tokens_mlp_dim",
            "channels_mlp": "channels_mlp_dim", "classes": "num_classes", "order": "order"}
    required = ["patch", "layers", "hidden"] + (["tokens_mlp", "channels_mlp"] if family == "mixer" else [])
    preset = model_name in ATTNLESS_ARCHS
    cfg: dict = {}
    for part in (text or "").split(",") if text else []:
        k, _, v = part.partition("=")
        if k == "order":
            if v not in (TOKEN_FIRST, CHANNEL_FIRST):
                ap.error(f"--arch entry {part!r}: expected order={TOKEN_FIRST} or order={CHANNEL_FIRST}")
            cfg["order"] = v
            continue
        if k not in keys or not v.isdigit() or int(v) <= 0:
            ap.error(f"--arch entry {part!r}: expected one of {', '.join(keys)} = a positive integer "
                     f"(order = {TOKEN_FIRST} or {CHANNEL_FIRST})")
        if preset and k != "classes":
            ap.error(f"--arch entry {part!r}: the preset {model_name} takes only order= and classes= "
                     f"(use '{family} --arch ...' for other sizes)")
        cfg[keys[k]] = int(v)
    missing = [k for k in required if keys[k] not in cfg]
    if untrained and not preset and missing:
        ap.error(f"{model_name} needs --arch {','.join(k + '=N' for k in required)}"
                 f"{'' if family == 'mixer' else '[,channels_mlp=N][,tokens_mlp=N]'}[,classes=C]"
                 f"[,order={TOKEN_FIRST}|{CHANNEL_FIRST}]: it lacks {', '.join(missing)}")
    return cfg


def param_count(cfg: dict) -> int:
    """Parameters of an attentionless configuration at 224² (for --list)."""
    cfg = finish_cfg(cfg, 224)
    d, p, t, c, n = cfg["hidden_dim"], cfg["patch_size"], cfg["tokens_mlp_dim"], cfg["channels_mlp_dim"], \
        cfg["seq_length"]
    block = 2 * n * t + t + n + 2 * d * c + c + d + 4 * d + (2 * n - 2 * d if cfg["arch"] == "ffvit" else 0)
    stem = 3 * p * p * d + d + (d * (n + 1) if cfg["arch"] == "ffvit" else 0)
    return stem + cfg["num_layers"] * block + 2 * d + d * 1000 + 1000


def list_models() -> None:
    print("Vision Transformers (torchvision names and init, ImageNet mean/std unless the weights say otherwise):")
    for k, v in DESCRIPTIONS.items():
        print(f"  {k:<14} {v}")
    print(f"  {'custom':<14} untrained ViT: --arch patch=P,layers=L,heads=H,hidden=D,mlp=M[,classes=C]")
    print("  switches: " + "; ".join(f"{s} = {m}" for s, m in switch_meaning("vit").items()))
    for family, title in (("mixer", "MLP-Mixer (timm MlpMixer state-dict names, input mean/std 0.5)"),
                          ("ffvit", "Feed-forward-only ViT (Melas-Kyriazi, lukemelas/do-you-even-need-attention "
                                    "LinearVisionTransformer names, ImageNet mean/std)")):
        print(f"{title}:")
        for k, cfg in ATTNLESS_ARCHS.items():
            if cfg["arch"] != family:
                continue
            c = finish_cfg(cfg, 224)
            desc = (f"patch {c['patch_size']}, {c['num_layers']} layers, hidden {c['hidden_dim']}, token MLP "
                    f"{c['tokens_mlp_dim']}, channel MLP {c['channels_mlp_dim']}, {c['order'].replace('_', '-')} "
                    f"({param_count(cfg) / 1e6:.1f}M params)")
            note = ATTNLESS_NOTES.get(k)
            print(f"  {k:<14} {desc}" + (f"; {note}" if note else ""))
        if family == "mixer":
            print(f"  {'mixer':<14} untrained Mixer: --arch patch=P,layers=L,hidden=D,tokens_mlp=T,channels_mlp=C"
                  f"[,classes=N][,order={TOKEN_FIRST}|{CHANNEL_FIRST}] (default {TOKEN_FIRST}, as Tolstikhin et al.)")
        else:
            print(f"  {'ffvit':<14} untrained FF-only ViT: --arch patch=P,layers=L,hidden=D[,channels_mlp=C (4D)]"
                  f"[,tokens_mlp=T (4 tokens)][,classes=N][,order=...] (default {CHANNEL_FIRST}, as the authors)")
        print("  switches: " + "; ".join(f"{s} = {m}" for s, m in switch_meaning(family).items()))


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


def parse_triple(ap, flag: str, text: Optional[str]) -> Optional[List[float]]:
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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    names = list(ARCHS) + ["custom"] + list(ATTNLESS_ARCHS) + ["mixer", "ffvit"]
    ap.add_argument("model", nargs="?", help="one of " + ", ".join(names) + " (custom, mixer and ffvit with "
                    "--arch); --list describes them")
    ap.add_argument("--arch", metavar="K=V,...",
                    help="custom untrained architecture: custom (ViT) patch=8,layers=2,heads=2,hidden=16,mlp=32"
                         "[,classes=10]; mixer patch=8,layers=2,hidden=16,tokens_mlp=8,channels_mlp=32"
                         f"[,classes=10][,order={TOKEN_FIRST}|{CHANNEL_FIRST}]; ffvit patch=8,layers=2,hidden=16"
                         "[,channels_mlp=64][,tokens_mlp=68][,classes=10][,order=...]; presets take order= and "
                         "classes=")
    ap.add_argument("--weights", default="untrained",
                    help="'untrained', a torchvision weights name (e.g. IMAGENET1K_V1) or a checkpoint file")
    ap.add_argument("--seed", type=int, default=0, help="seed for untrained weights (default 0)")
    ap.add_argument("--image-size", type=int, help="image size for untrained models (default 224)")
    ap.add_argument("--mean", metavar="R,G,B", help="input normalization mean recorded in the manifest (default: "
                    "the weights' own; timm mixers 0.5)")
    ap.add_argument("--std", metavar="R,G,B", help="input normalization std recorded in the manifest")
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
        list_models()
        import resnet  # tools/resnet.py
        resnet.list_models()
        return 0
    if a.model in ("resnet50", "resnet_custom"):  # ResNets: tools/resnet.py
        import resnet
        return resnet.run(a, ap)
    mean, std = parse_triple(ap, "--mean", a.mean), parse_triple(ap, "--std", a.std)
    arch = None
    family = attnless_family(a.model) if a.model else None
    if a.model == "custom":
        arch = parse_arch(ap, a.arch)
        if a.weights != "untrained" and not os.path.exists(a.weights):
            ap.error("custom architectures take --weights untrained or a checkpoint file")
    elif family:
        arch = parse_attnless_arch(ap, a.arch, a.model, a.weights == "untrained")
    elif a.model not in ARCHS:
        ap.error(f"unknown model {a.model!r}: expected one of {', '.join(names)}")
    elif a.arch:
        ap.error(f"--arch is for custom, mixer and ffvit (and order=/classes= of the attentionless presets), "
                 f"not {a.model}")
    if not a.out:
        ap.error("--out DIR is required")
    patch = (arch if a.model in ("custom", "mixer", "ffvit") else ARCHS.get(a.model) or ATTNLESS_ARCHS[a.model]) \
        .get("patch_size")
    if a.image_size is not None and (a.image_size <= 0 or (patch and a.image_size % patch)):
        ap.error(f"--image-size {a.image_size}: expected a positive multiple of the patch size {patch}")
    if family:
        model, meta = build_attnless(a.model, a.weights, a.seed, a.image_size, arch)
        size = model.cfg["image_size"]
    else:
        model, meta = build(a.model, a.weights, a.seed, a.image_size, arch)
        size = model.image_size
    meta["mean"], meta["std"] = mean or meta["mean"], std or meta["std"]
    name = a.name or (f"untrained-seed{a.seed}" if a.weights == "untrained" else meta["weights"])
    log = print if a.check else (lambda s: None)
    (convert_attnless if family else convert)(model, meta, a.model, a.out, check=not a.no_verify,
                                              write_weights=not a.graphs_only, weight_set=name, log=log,
                                              check_layers=a.check_layers)
    print(f"wrote {a.out}/manifest.json ({a.model}, image {size}, weights {name})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
