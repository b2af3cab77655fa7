"""Reference models of the attentionless family, the ground truth its graphs are checked
against: timm's MLP-Mixer (`MlpMixer`) and Melas-Kyriazi's feed-forward-only ViT
(`LinearVisionTransformer` of github.com/lukemelas/do-you-even-need-attention) as plain
nn.Modules with the authors' structure, state-dict names and initialisation, and the init
distributions recorded in the manifest."""

from __future__ import annotations

import math
from typing import Dict, Tuple

import torch
import torch.nn as nn

from .layers import LN_EPS

TOKEN_FIRST, CHANNEL_FIRST = "token_first", "channel_first"

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


def ref_block(block: nn.Module, x: torch.Tensor, sw: Dict[str, float]) -> torch.Tensor:
    """A reference block with ablation switches: each switch removes the same op whatever the order."""
    tok = lambda t: block.token_part(t, sw["use_ln1"], sw["use_attn"], sw["use_res1"])  # noqa: E731
    ch = lambda t: block.channel_part(t, sw["use_ln2"], sw["use_mlp"], sw["use_res2"])  # noqa: E731
    return ch(tok(x)) if block.order == TOKEN_FIRST else tok(ch(x))


def init_spec(cfg: dict, key: str, shape: Tuple[int, ...]) -> dict:
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

