"""Attentionless models: timm's MLP-Mixer (`MlpMixer`) and Melas-Kyriazi's feed-forward-only
ViT (`LinearVisionTransformer` of github.com/lukemelas/do-you-even-need-attention). Their
graphs take the ViT's switches, so the runtime chains them unchanged: use_ln1/use_attn/use_res1
are the token-mixing sub-block (its norm, its MLP across patches, its residual) and
use_ln2/use_mlp/use_res2 the channel sub-block, whichever order the block applies them in.
Reference models: mixer_ref.py."""

from __future__ import annotations

import math
import os
from typing import Callable, Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .family import TOKEN_PARTS, Family, check_image_size, need_out, register, switch_line
from .layers import LN_EPS, LayerNormStats, Params, gelu_grad, ln_bwd, ln_fwd, select
from .manifest import build_manifest, write_manifest
from .mixer_ref import CHANNEL_FIRST, TOKEN_FIRST, RefLinearViT, RefMixer, init_spec, ref_block
from .tokens import ABLATIONS, TokenGraphs, TokenReference, check_token_model, export_token_graphs, \
    token_layers
from .weights import HALF, IMAGENET_MEAN, IMAGENET_STD, checkpoint_name, enum_categories, load_checkpoint, \
    new_meta, tensor_table, torchvision_enum, write_weight_set

FAMILIES = ("mixer", "ffvit")


def _mixer(patch, layers, hidden):
    return dict(arch="mixer", patch_size=patch, num_layers=layers, hidden_dim=hidden, tokens_mlp_dim=hidden // 2,
                channels_mlp_dim=4 * hidden, order=TOKEN_FIRST)


def _ffvit(patch, layers, hidden):
    # their LinearBlock: Mlp(dim, 4 dim) over channels, Mlp(num_tokens, 4 num_tokens) over tokens
    return dict(arch="ffvit", patch_size=patch, num_layers=layers, hidden_dim=hidden, tokens_mlp_dim=None,
                channels_mlp_dim=4 * hidden, order=CHANNEL_FIRST)


# timm's mixer_*_224 entry points (mlp_ratio (0.5, 4.0)) and the authors' linear_tiny / linear_base
ARCHS: Dict[str, dict] = {
    "mixer_s32_224": _mixer(32, 8, 512),
    "mixer_s16_224": _mixer(16, 8, 512),
    "mixer_b32_224": _mixer(32, 12, 768),
    "mixer_b16_224": _mixer(16, 12, 768),
    "mixer_l32_224": _mixer(32, 24, 1024),
    "mixer_l16_224": _mixer(16, 24, 1024),
    "linear_tiny": _ffvit(16, 12, 192),
    "linear_base": _ffvit(16, 12, 768),
}
NOTES = {
    "mixer_b16_224": "timm checkpoints .goog_in21k_ft_in1k (mean/std 0.5), .goog_in21k (21843 classes); "
                     ".miil_* need --mean 0,0,0 --std 1,1,1",
    "mixer_l16_224": "timm checkpoints .goog_in21k_ft_in1k (mean/std 0.5), .goog_in21k (21843 classes)",
    "linear_tiny": "FF-tiny, 61.4% top-1 (release linear-tiny-checkpoint.pth: its 'model' state dict)",
    "linear_base": "FF-base, 74.9% top-1 (release linear-base-checkpoint.pth: its 'model' state dict)",
}
# tensor-name roles: the token sub-block's norm and MLP, the channel sub-block's, stem and head
KEYS = {
    "mixer": dict(tok_ln="norm1", tok_mlp="mlp_tokens", ch_ln="norm2", ch_mlp="mlp_channels",
                  tok_norm_over_tokens=False, proj="stem.proj", cls=None),
    "ffvit": dict(tok_ln="norm2", tok_mlp="mlp2", ch_ln="norm1", ch_mlp="mlp1",
                  tok_norm_over_tokens=True, proj="patch_embed.proj", cls="cls_token"),
}
FF_POS = ["pos_encoding.pos_embed", "pos_encoding.cls_pos_embed"]
MIX_SAVED = ["s_x1", "s_mean1", "s_rstd1", "s_z1", "s_mean2", "s_rstd2", "s_z2"]
BLOCK_ABLATIONS = ABLATIONS + [
    {"use_ln1": 1.0, "use_attn": 0.0, "use_res1": 1.0, "use_ln2": 1.0, "use_mlp": 0.0, "use_res2": 1.0},
    {"use_ln1": 0.0, "use_attn": 1.0, "use_res1": 1.0, "use_ln2": 1.0, "use_mlp": 1.0, "use_res2": 0.0},
]


def switch_meaning(arch: str) -> Dict[str, str]:
    """What each switch removes in a mixer or FF-only ViT (written to the manifest and printed by --list)."""
    k = KEYS[arch]
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


def sub_fwd(x, ln_w, ln_b, w1, b1, w2, b2, use_ln, use_mlp, use_res, norm_t: bool, mlp_t: bool):
    """A residual sub-block on x [B,n,D]: LayerNorm, then a GELU MLP, then the residual; norm_t / mlp_t
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
        self.k, self.order = KEYS[arch], order

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
    """image [B,3,H,W] -> tokens [B,n,D]: the patch convolution alone (no class token, no position)."""

    def __init__(self, tensors, side: int, proj: str = "stem.proj"):
        super().__init__(tensors)
        self.proj, self.side = proj, side
        shape = tensors[f"{proj}.weight"].shape
        self.d, self.p = int(shape[0]), int(shape[-1])

    def embed(self, x):
        t = F.conv2d(x, self.w(f"{self.proj}.weight"), self.w(f"{self.proj}.bias"), stride=self.p)
        return t.reshape(-1, self.d, self.side * self.side).permute(0, 2, 1)

    def forward(self, x):
        return self.embed(x)


class MixerStemVjp(MixerStemFwd):
    def forward(self, dy):
        dt = dy.permute(0, 2, 1).reshape(-1, self.d, self.side, self.side)
        return F.conv_transpose2d(dt, self.w(f"{self.proj}.weight"), stride=self.p)


class FFStemFwd(MixerStemFwd):
    """image -> tokens [B,1+n,D]: patch convolution, class token, position embedding (switch use_pos)."""

    def __init__(self, tensors, side: int):
        super().__init__(tensors, side, "patch_embed.proj")

    def forward(self, x, use_pos):
        e = self.embed(x)
        t = torch.cat([self.w("cls_token").expand(e.shape[0], -1, -1), e], dim=1)
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




# --- configuration, construction, --arch -----------------------------------------------


def family_of(model_name: str) -> Optional[str]:
    """'mixer' or 'ffvit' for an attentionless model name, else None."""
    if model_name in ("mixer", "ffvit"):
        return model_name
    return ARCHS[model_name]["arch"] if model_name in ARCHS else None


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


def infer_cfg(sd: Dict[str, torch.Tensor], arch: str, path: str) -> dict:
    """The configuration a timm MlpMixer / authors' LinearVisionTransformer state dict was made with."""
    k = KEYS[arch]
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


def _from_checkpoint(model_name: str, path: str, image_size: Optional[int], given: dict):
    family, preset = family_of(model_name), dict(ARCHS.get(model_name, {}))
    sd = load_checkpoint(path)
    cfg = infer_cfg(sd, family, path)
    cfg["order"] = given.pop("order", preset.get("order", TOKEN_FIRST if family == "mixer" else CHANNEL_FIRST))
    want = {k: v for k, v in {**preset, **given}.items() if k not in ("arch", "order") and v is not None}
    if image_size:
        want["image_size"] = image_size
    wrong = [f"{k} {cfg.get(k)} (expected {v})" for k, v in want.items() if cfg.get(k) != v]
    if wrong:
        raise SystemExit(f"error: checkpoint {path!r} does not fit {model_name}: it has {', '.join(wrong)}")
    cfg = finish_cfg(cfg, cfg["image_size"])
    model = (RefMixer if family == "mixer" else RefLinearViT)(cfg)
    try:
        model.load_state_dict({k: v.float() for k, v in sd.items()})
    except RuntimeError as err:
        raise SystemExit(f"error: checkpoint {path!r} does not load into {model_name}: "
                         f"{str(err).splitlines()[0]} {' '.join(str(err).split()[-40:])}") from None
    return model


def build(model_name: str, weights: str, seed: int, image_size: Optional[int], arch: Optional[dict]):
    """Returns (reference model in eval mode, metadata dict) for an attentionless model."""
    family = family_of(model_name)
    preset = dict(ARCHS.get(model_name, {}))
    given = dict(arch or {})
    meta = new_meta(weights, *((HALF, HALF) if family == "mixer" else (IMAGENET_MEAN, IMAGENET_STD)))
    if weights == "untrained":
        cfg = dict(preset, **given) if preset else dict(given, arch=family)
        cfg.setdefault("order", TOKEN_FIRST if family == "mixer" else CHANNEL_FIRST)
        cfg = finish_cfg(cfg, image_size or 224)
        torch.manual_seed(seed)
        model = (RefMixer if family == "mixer" else RefLinearViT)(cfg)
        meta["seed"] = seed
    elif os.path.exists(weights):
        model = _from_checkpoint(model_name, weights, image_size, given)
        meta["weights"] = checkpoint_name(weights)
    else:
        raise SystemExit(f"error: --weights {weights!r}: {model_name} takes 'untrained' or a checkpoint file "
                         "(.pth or .safetensors state dict)")
    if model.cfg["num_classes"] == 1000:
        meta["categories"] = enum_categories(torchvision_enum("vit_b_16"))
    model.eval()
    return model, meta


def parse_arch(ap, text: Optional[str], model_name: str, untrained: bool = True) -> dict:
    """--arch for the attentionless models: patch, layers, hidden, tokens_mlp, channels_mlp, classes, order
    (a checkpoint's sizes come from its tensors: what --arch gives must agree)."""
    family = family_of(model_name)
    keys = {"patch": "patch_size", "layers": "num_layers", "hidden": "hidden_dim", "tokens_mlp": "tokens_mlp_dim",
            "channels_mlp": "channels_mlp_dim", "classes": "num_classes", "order": "order"}
    required = ["patch", "layers", "hidden"] + (["tokens_mlp", "channels_mlp"] if family == "mixer" else [])
    preset = model_name in ARCHS
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




# --- conversion ---------------------------------------------------------------------------

HEAD_KEYS = ["norm.weight", "norm.bias", "head.weight", "head.bias"]


def _graphs(cfg: dict, sd: Dict[str, torch.Tensor]) -> TokenGraphs:
    arch, order, seq = cfg["arch"], cfg["order"], cfg["seq_length"]
    ff, side = arch == "ffvit", cfg["image_size"] // cfg["patch_size"]

    def modules(stem_t, block_t, head_t) -> Dict[str, nn.Module]:
        return {
            "stem.fwd": FFStemFwd(stem_t, side) if ff else MixerStemFwd(stem_t, side),
            "stem.vjp": FFStemVjp(stem_t, side) if ff else MixerStemVjp(stem_t, side),
            "block.fwd": MixBlockFwd(block_t, arch, order), "block.vjp": MixBlockVjp(block_t, arch, order),
            "head.fwd": ClsHeadFwd(head_t) if ff else PoolHeadFwd(head_t),
            "head.vjp": ClsHeadVjp(head_t, seq) if ff else PoolHeadVjp(head_t, seq),
        }

    block_keys = [k[len("blocks.0."):] for k in sd if k.startswith("blocks.0.")]
    return TokenGraphs(
        modules=modules, stem_t={k: sd[k] for k in sd if not k.startswith("blocks.") and k not in HEAD_KEYS},
        block_t=lambda i: {k: sd[f"blocks.{i}.{k}"] for k in block_keys}, head_t={k: sd[k] for k in HEAD_KEYS},
        stem_switches=["use_pos"] if ff else [], block_saved=MIX_SAVED, image_size=cfg["image_size"], seq=seq,
        dim=cfg["hidden_dim"], num_classes=cfg["num_classes"], num_layers=cfg["num_layers"])


def _reference(model) -> TokenReference:
    ff = model.cfg["arch"] == "ffvit"
    return TokenReference(
        stem=model.embed, blocks=list(model.blocks), block=ref_block, block_ablations=BLOCK_ABLATIONS,
        block_label="reference block",
        features=(lambda t: model.norm(t)[:, 0]) if ff else (lambda t: model.norm(t).mean(dim=1)),
        head_keys=("head.weight", "head.bias"), forward=model)


def convert(model, meta: dict, model_name: str, out: str, check: bool = True, write_weights: bool = True,
            weight_set: Optional[str] = None, log: Callable[[str], None] = print, tol: float = 1e-5,
            check_layers: int = 10**9) -> dict:
    """Writes out/manifest.json, out/graphs/*.onnx and the weight set for a RefMixer / RefLinearViT;
    returns the manifest."""
    torch.set_grad_enabled(True)
    cfg = model.cfg
    sd = {k: v.detach().float() for k, v in model.state_dict().items()}
    tg = _graphs(cfg, sd)
    spec = lambda k, shape: init_spec(cfg, k, shape)  # noqa: E731
    if check:
        check_token_model(f"{model_name} ({cfg['arch']}, {cfg['order']}, {meta['weights']}) on the reference module",
                          tg, _reference(model), sd, spec, meta["weights"] == "untrained", tol, log, check_layers)
    os.makedirs(os.path.join(out, "graphs"), exist_ok=True)
    graphs = export_token_graphs(out, tg)
    layers = token_layers(tg.stem_switches, [(f"block_{i}", f"blocks.{i}.") for i in range(tg.num_layers)])
    family = {k: cfg[k] for k in ("patch_size", "hidden_dim", "tokens_mlp_dim", "channels_mlp_dim")}
    family.update(block_order=cfg["order"], class_token=cfg["arch"] == "ffvit", seq_length=cfg["seq_length"],
                  layer_norm_eps=LN_EPS, switch_meaning=switch_meaning(cfg["arch"]))
    manifest = build_manifest(
        name=model_name, architecture=cfg["arch"], image_size=cfg["image_size"], num_layers=tg.num_layers,
        num_classes=tg.num_classes, family=family, patch_filters=f"{KEYS[cfg['arch']]['proj']}.weight", meta=meta,
        graphs=graphs, layers=layers, tensors=tensor_table(sd, spec),
        weight_sets=write_weight_set(out, sd, model_name, meta, weight_set) if write_weights else {},
        runtime=FAMILY.runtime_fields, batch_axis=True)
    write_manifest(out, manifest)
    return manifest


# ---------------------------------------------------------------------------------------
# The family (registry.py collects it): MLP-Mixers and FF-only ViTs


def _prepare(ap, a):
    arch = parse_arch(ap, a.arch, a.model, a.weights == "untrained")
    need_out(ap, a)
    check_image_size(ap, a, (arch if a.model in FAMILIES else ARCHS[a.model]).get("patch_size"))
    model, meta = build(a.model, a.weights, a.seed, a.image_size, arch)
    return model, meta, model.cfg["image_size"], convert, {}


def _lines(fam: str) -> list:
    lines = []
    for k, cfg in ARCHS.items():
        if cfg["arch"] != fam:
            continue
        c = finish_cfg(cfg, 224)
        desc = (f"patch {c['patch_size']}, {c['num_layers']} layers, hidden {c['hidden_dim']}, token MLP "
                f"{c['tokens_mlp_dim']}, channel MLP {c['channels_mlp_dim']}, {c['order'].replace('_', '-')} "
                f"({param_count(cfg) / 1e6:.1f}M params)")
        note = NOTES.get(k)
        lines.append(f"  {k:<14} {desc}" + (f"; {note}" if note else ""))
    if fam == "mixer":
        lines.append(f"  {'mixer':<14} untrained Mixer: --arch patch=P,layers=L,hidden=D,tokens_mlp=T,channels_mlp=C"
                     f"[,classes=N][,order={TOKEN_FIRST}|{CHANNEL_FIRST}] (default {TOKEN_FIRST}, as Tolstikhin "
                     "et al.)")
    else:
        lines.append(f"  {'ffvit':<14} untrained FF-only ViT: --arch patch=P,layers=L,hidden=D[,channels_mlp=C (4D)]"
                     f"[,tokens_mlp=T (4 tokens)][,classes=N][,order=...] (default {CHANNEL_FIRST}, as the authors)")
    return lines + [switch_line(switch_meaning(fam))]


def _listing():
    return (["MLP-Mixer (timm MlpMixer state-dict names, input mean/std 0.5):"] + _lines("mixer")
            + ["Feed-forward-only ViT (Melas-Kyriazi, lukemelas/do-you-even-need-attention LinearVisionTransformer "
               "names, ImageNet mean/std):"] + _lines("ffvit"))


def _arch_text(m: dict) -> str:
    return (f"patch={m['patch_size']},layers={m['num_layers']},hidden={m['hidden_dim']},"
            f"tokens_mlp={m['tokens_mlp_dim']},channels_mlp={m['channels_mlp_dim']},classes={m['num_classes']},"
            f"order={m['block_order']}")


FAMILY = register(Family(name="mixer", architectures=FAMILIES, presets=tuple(ARCHS), custom=FAMILIES,
                         prepare=_prepare, listing=_listing, arch_text=_arch_text,
                         block_words={"ffvit": "encoder"},
                         part_names={a: {**TOKEN_PARTS, "attn": mixing, "mlp": "channel MLP"}
                                     for a, mixing in (("mixer", "token mixing"),
                                                       ("ffvit", "token feed-forward"))}))
