"""torchvision's Vision Transformers: graph modules (input processing, encoder block, head,
each with its hand-written VJP), torchvision references with ablation switches, init
distributions, model construction and conversion."""

from __future__ import annotations

import math
import os
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .family import Family, check_image_size, custom_arch, need_out, register, switch_line
from .layers import LN_EPS, LayerNormStats, Params, gelu_grad, ln_bwd, mix
from .manifest import build_manifest, write_manifest
from .tokens import ABLATIONS, TokenGraphs, TokenReference, check_token_model, export_token_graphs, \
    token_layers
from .weights import build_model, load_checkpoint, tensor_table, torchvision_enum, write_weight_set

STEM_SWITCHES = ["use_pos"]
BLOCK_SAVED = ["s_x1", "s_mean1", "s_rstd1", "s_q", "s_k", "s_v", "s_p", "s_mean2", "s_rstd2", "s_z"]
STEM_KEYS = ["conv_proj.weight", "conv_proj.bias", "class_token", "encoder.pos_embedding"]
HEAD_KEYS = ["encoder.ln.weight", "encoder.ln.bias", "heads.head.weight", "heads.head.bias"]
BLOCK_KEYS = ["ln_1.weight", "ln_1.bias", "self_attention.in_proj_weight", "self_attention.in_proj_bias",
              "self_attention.out_proj.weight", "self_attention.out_proj.bias", "ln_2.weight", "ln_2.bias",
              "mlp.0.weight", "mlp.0.bias", "mlp.3.weight", "mlp.3.bias"]

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
SWITCH_MEANING = {"use_pos": "encoder.pos_embedding (stem)", "use_ln1": "ln_1", "use_attn": "self_attention",
                  "use_res1": "the residual around self-attention", "use_ln2": "ln_2", "use_mlp": "mlp",
                  "use_res2": "the residual around the MLP"}


# ---------------------------------------------------------------------------------------
# Graph modules: forward (with saved activations) and VJP for stem, block, head.


class StemFwd(Params):
    """image [B,3,H,W] -> tokens [B,1+n,D]: patch conv, class token, position embedding."""

    def __init__(self, tensors):
        super().__init__(tensors)
        shape = tensors["conv_proj.weight"].shape
        self.d, self.p = int(shape[0]), int(shape[-1])
        self.side = int(round(math.sqrt(tensors["encoder.pos_embedding"].shape[1] - 1)))

    def forward(self, x, use_pos):
        t = F.conv2d(x, self.w("conv_proj.weight"), self.w("conv_proj.bias"), stride=self.p)
        t = t.reshape(-1, self.d, self.side * self.side).permute(0, 2, 1)
        t = torch.cat([self.w("class_token").expand(t.shape[0], -1, -1), t], dim=1)
        return t + use_pos * self.w("encoder.pos_embedding")


class StemVjp(StemFwd):
    def forward(self, dy):
        dt = dy[:, 1:, :].permute(0, 2, 1).reshape(-1, self.d, self.side, self.side)
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
        qkv = qkv.reshape(-1, n, 3, nh, hd).permute(2, 0, 3, 1, 4)  # [3, B, nh, n, hd]
        q, k, v = qkv[0], qkv[1], qkv[2]
        s = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        p = torch.softmax(s, dim=-1)
        o = torch.matmul(p, v).permute(0, 2, 1, 3).reshape(-1, n, d)
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
        do = do.reshape(-1, n, nh, hd).permute(0, 2, 1, 3)  # [B, nh, n, hd]
        dp = torch.matmul(do, v.transpose(-2, -1))
        dv = torch.matmul(p.transpose(-2, -1), do)
        ds = p * (dp - (dp * p).sum(-1, keepdim=True)) * (1.0 / math.sqrt(hd))
        dq = torch.matmul(ds, k)
        dk = torch.matmul(ds.transpose(-2, -1), q)
        dqkv = torch.stack([dq, dk, dv], 0).permute(1, 3, 0, 2, 4).reshape(-1, n, 3 * d)
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
    """torchvision's input processing: patches, class token, position embedding (if use_pos)."""
    t = model._process_input(x)
    t = torch.cat([model.class_token.expand(t.shape[0], -1, -1), t], dim=1)
    return t + model.encoder.pos_embedding if use_pos else t


def ref_head(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """torchvision's final LayerNorm and head on the class token."""
    return model.heads(model.encoder.ln(x)[:, 0])


# ---------------------------------------------------------------------------------------
# Init distributions (torchvision's VisionTransformer.__init__), recorded per tensor.


def init_spec(key: str, shape: Tuple[int, ...]) -> dict:
    """The init distribution of a torchvision ViT tensor (by state-dict key and shape)."""
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


# ---------------------------------------------------------------------------------------
# Construction, --arch


def _from_checkpoint(path: str, cfg: dict, image_size: Optional[int]):
    from torchvision.models.vision_transformer import VisionTransformer

    sd = load_checkpoint(path)
    pos = sd.get("encoder.pos_embedding")
    if pos is None:
        raise SystemExit(f"error: checkpoint {path!r} has no 'encoder.pos_embedding': not a torchvision ViT state dict")
    size = image_size or int(round(math.sqrt(pos.shape[1] - 1))) * cfg["patch_size"]
    num_classes = sd["heads.head.weight"].shape[0] if "heads.head.weight" in sd else 1000
    cfg = {k: v for k, v in cfg.items() if k not in ("image_size", "num_classes")}
    model = VisionTransformer(image_size=size, num_classes=num_classes, **cfg)
    model.load_state_dict(sd)
    return model, num_classes


def build(model_name: str, weights: str, seed: int, image_size: Optional[int], arch: Optional[dict] = None):
    """Returns (torchvision VisionTransformer in eval mode, metadata dict)."""
    from torchvision.models.vision_transformer import VisionTransformer

    cfg = {k: v for k, v in (arch or ARCHS[model_name]).items() if k != "image_size"}
    enum = torchvision_enum(model_name) if model_name in ARCHS else None
    return build_model(model_name, weights, seed, enum,
                       lambda: VisionTransformer(image_size=image_size or 224, **cfg),
                       lambda path: _from_checkpoint(path, cfg, image_size))


def parse_arch(ap, text: Optional[str]) -> dict:
    """--arch of `custom`: patch=P,layers=L,heads=H,hidden=D,mlp=M[,classes=C]."""
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


# ---------------------------------------------------------------------------------------
# Conversion


def _graphs(model, sd: Dict[str, torch.Tensor]) -> TokenGraphs:
    nh, seq = model.encoder.layers[0].num_heads, model.seq_length

    def modules(stem_t, block_t, head_t) -> Dict[str, nn.Module]:
        return {"stem.fwd": StemFwd(stem_t), "stem.vjp": StemVjp(stem_t),
                "block.fwd": BlockFwd(block_t, nh, seq), "block.vjp": BlockVjp(block_t, nh, seq),
                "head.fwd": HeadFwd(head_t), "head.vjp": HeadVjp(head_t, seq)}

    return TokenGraphs(
        modules=modules, stem_t={k: sd[k] for k in STEM_KEYS}, head_t={k: sd[k] for k in HEAD_KEYS},
        block_t=lambda i: {k: sd[f"encoder.layers.encoder_layer_{i}.{k}"] for k in BLOCK_KEYS},
        stem_switches=STEM_SWITCHES, block_saved=BLOCK_SAVED, image_size=model.image_size, seq=seq,
        dim=model.hidden_dim, num_classes=int(sd["heads.head.weight"].shape[0]),
        num_layers=len(model.encoder.layers))


def _reference(model) -> TokenReference:
    return TokenReference(
        stem=lambda x, use_pos: ref_stem(model, x, use_pos), blocks=list(model.encoder.layers), block=ref_block,
        block_ablations=ABLATIONS, block_label="EncoderBlock", features=lambda t: model.encoder.ln(t)[:, 0],
        head_keys=("heads.head.weight", "heads.head.bias"), forward=model)


def convert(model, meta: dict, model_name: str, out: str, check: bool = True, write_weights: bool = True,
            weight_set: Optional[str] = None, log: Callable[[str], None] = print, tol: float = 1e-5,
            check_layers: int = 10**9) -> dict:
    """Writes out/manifest.json, out/graphs/*.onnx and out/<weight_set>.safetensors for a torchvision
    VisionTransformer; returns the manifest."""
    torch.set_grad_enabled(True)
    sd = {k: v.detach().float() for k, v in model.state_dict().items()}
    if "heads.pre_logits.weight" in sd:
        raise SystemExit("error: heads with a pre_logits layer are not supported")
    tg = _graphs(model, sd)
    if check:
        check_token_model(f"{model_name} ({meta['weights']})", tg, _reference(model), sd, init_spec,
                          meta["weights"] == "untrained", tol, log, check_layers)
    os.makedirs(os.path.join(out, "graphs"), exist_ok=True)
    graphs = export_token_graphs(out, tg)
    layers = token_layers(STEM_SWITCHES, [(f"encoder_layer_{i}", f"encoder.layers.encoder_layer_{i}.")
                                          for i in range(tg.num_layers)])
    family = {"patch_size": model.patch_size, "hidden_dim": model.hidden_dim, "num_heads": model.encoder.layers[0]
              .num_heads, "mlp_dim": model.mlp_dim, "seq_length": model.seq_length, "layer_norm_eps": LN_EPS}
    manifest = build_manifest(
        name=model_name, architecture="vit", image_size=model.image_size, num_layers=tg.num_layers,
        num_classes=tg.num_classes, family=family, patch_filters="conv_proj.weight", meta=meta, graphs=graphs,
        layers=layers, tensors=tensor_table(sd, init_spec),
        weight_sets=write_weight_set(out, sd, model_name, meta, weight_set) if write_weights else {},
        runtime=FAMILY.runtime_fields, batch_axis=True)
    write_manifest(out, manifest)
    return manifest


# ---------------------------------------------------------------------------------------
# The family (registry.py collects it)


def _prepare(ap, a):
    arch = custom_arch(ap, a, "custom", parse_arch, "custom architectures",
                       "custom, mixer and ffvit (and order=/classes= of the attentionless presets)")
    need_out(ap, a)
    check_image_size(ap, a, (arch or ARCHS.get(a.model, {})).get("patch_size"))
    model, meta = build(a.model, a.weights, a.seed, a.image_size, arch)
    return model, meta, model.image_size, convert, {}


def _listing():
    lines = ["Vision Transformers (torchvision names and init, ImageNet mean/std unless the weights say otherwise):"]
    lines += [f"  {k:<14} {v}" for k, v in DESCRIPTIONS.items()]
    lines.append(f"  {'custom':<14} untrained ViT: --arch patch=P,layers=L,heads=H,hidden=D,mlp=M[,classes=C]")
    return lines + [switch_line(SWITCH_MEANING)]


def _arch_text(m: dict) -> str:
    return (f"patch={m['patch_size']},layers={m['num_layers']},heads={m['num_heads']},hidden={m['hidden_dim']},"
            f"mlp={m['mlp_dim']},classes={m['num_classes']}")


FAMILY = register(Family(name="vit", architectures=("vit",), presets=tuple(ARCHS), custom=("custom",),
                         torchvision=tuple(ARCHS), prepare=_prepare, listing=_listing, arch_text=_arch_text,
                         block_words={"vit": "encoder"}))
