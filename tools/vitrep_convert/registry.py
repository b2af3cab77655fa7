"""The model names this converter knows, the family each belongs to, and their descriptions
(`--list`)."""

from __future__ import annotations

from typing import List, Optional

from . import mixer, resnet, vit
from .mixer_ref import CHANNEL_FIRST, TOKEN_FIRST

# name -> family ("vit", "mixer" for MLP-Mixers and FF-only ViTs, "resnet")
MODELS = {**{k: "vit" for k in vit.ARCHS}, "custom": "vit",
          **{k: "mixer" for k in mixer.ARCHS}, "mixer": "mixer", "ffvit": "mixer",
          **{k: "resnet" for k in resnet.RESNETS}, "resnet_custom": "resnet"}


def family(model_name: Optional[str]) -> Optional[str]:
    """The family module name of a model name ("vit", "mixer", "resnet"), or None for unknown names."""
    return MODELS.get(model_name or "")


def _switches(meaning: dict) -> str:
    return "  switches: " + "; ".join(f"{s} = {m}" for s, m in meaning.items())


def _mixer_lines(fam: str) -> List[str]:
    lines = []
    for k, cfg in mixer.ARCHS.items():
        if cfg["arch"] != fam:
            continue
        c = mixer.finish_cfg(cfg, 224)
        desc = (f"patch {c['patch_size']}, {c['num_layers']} layers, hidden {c['hidden_dim']}, token MLP "
                f"{c['tokens_mlp_dim']}, channel MLP {c['channels_mlp_dim']}, {c['order'].replace('_', '-')} "
                f"({mixer.param_count(cfg) / 1e6:.1f}M params)")
        note = mixer.NOTES.get(k)
        lines.append(f"  {k:<14} {desc}" + (f"; {note}" if note else ""))
    if fam == "mixer":
        lines.append(f"  {'mixer':<14} untrained Mixer: --arch patch=P,layers=L,hidden=D,tokens_mlp=T,channels_mlp=C"
                     f"[,classes=N][,order={TOKEN_FIRST}|{CHANNEL_FIRST}] (default {TOKEN_FIRST}, as Tolstikhin "
                     "et al.)")
    else:
        lines.append(f"  {'ffvit':<14} untrained FF-only ViT: --arch patch=P,layers=L,hidden=D[,channels_mlp=C (4D)]"
                     f"[,tokens_mlp=T (4 tokens)][,classes=N][,order=...] (default {CHANNEL_FIRST}, as the authors)")
    return lines + [_switches(mixer.switch_meaning(fam))]


def listing() -> List[str]:
    """Every model name with a one-line description, by family, with what each switch removes."""
    lines = ["Vision Transformers (torchvision names and init, ImageNet mean/std unless the weights say otherwise):"]
    lines += [f"  {k:<14} {v}" for k, v in vit.DESCRIPTIONS.items()]
    lines.append(f"  {'custom':<14} untrained ViT: --arch patch=P,layers=L,heads=H,hidden=D,mlp=M[,classes=C]")
    lines.append(_switches(vit.SWITCH_MEANING))
    lines.append("MLP-Mixer (timm MlpMixer state-dict names, input mean/std 0.5):")
    lines += _mixer_lines("mixer")
    lines.append("Feed-forward-only ViT (Melas-Kyriazi, lukemelas/do-you-even-need-attention LinearVisionTransformer "
                 "names, ImageNet mean/std):")
    lines += _mixer_lines("ffvit")
    lines.append("ResNets (torchvision names and init, ImageNet mean/std; one graph per residual block):")
    lines += [f"  {k:<14} {v}" for k, v in resnet.DESCRIPTIONS.items()]
    lines.append(_switches(resnet.SWITCH_MEANING))
    return lines
