#!/usr/bin/env python3
"""Builds the test fixtures: tiny torchvision ViTs, MLP-Mixers (both block orders) and a
feed-forward-only ViT converted with tools/convert.py, and
PyTorch's outputs per layer and input gradients (torch.autograd) for fixed inputs, under
several ablations. Regenerate with:

    python3 tools/make_fixtures.py            # writes tests/fixtures/

Everything is seeded, so the files are the same on every run with the same torch.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

import torch

from fixture_cases import gradient_case, swapped
from vitrep_convert import mixer, mixer_ref, vit
from vitrep_convert.tokens import SWITCHES
from vitrep_convert.weights import HALF, IMAGENET_MEAN, IMAGENET_STD, write_safetensors

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")

TINY = {
    "tiny_vit": dict(image_size=32, patch_size=8, num_layers=3, num_heads=2, hidden_dim=16, mlp_dim=32,
                     num_classes=10),
    "tiny_vit_p4": dict(image_size=16, patch_size=4, num_layers=2, num_heads=4, hidden_dim=32, mlp_dim=48,
                        num_classes=7),
}

# ablations: list of (name, {encoder layer (1-based): {switch: 0}}, use_pos)
def ablations(n):
    every = range(1, n + 1)
    return [
        ("none", {}, 1.0),
        ("no_pos", {}, 0.0),
        ("no_layernorm", {i: ["use_ln1", "use_ln2"] for i in every}, 1.0),
        ("no_attn_1_2", {i: ["use_attn"] for i in (1, 2)}, 1.0),
        ("no_residual", {i: ["use_res1", "use_res2"] for i in every}, 1.0),
        ("no_mlp", {i: ["use_mlp"] for i in every}, 1.0),
        ("ln_attn_only_1", {1: ["use_res1", "use_ln2", "use_mlp", "use_res2"]}, 1.0),
    ]


def switches(off: dict, layer: int) -> dict:
    return {s: 0.0 if s in off.get(layer, []) else 1.0 for s in SWITCHES}


def ref_chain(model, x, off, use_pos, layer, blocks=None):
    """PyTorch forward with the torchvision modules, through the given blocks."""
    n = len(model.encoder.layers)
    t = vit.ref_stem(model, x, use_pos)
    last = n if layer == "logits" else layer
    for b in blocks or range(1, last + 1):
        t = vit.ref_block(model.encoder.layers[b - 1], t, switches(off, b))
    return vit.ref_head(model, t) if layer == "logits" else t


def perturb(model, gen):
    """Make every tensor non-trivial (untrained LayerNorms are 1/0 and the head is zero)."""
    with torch.no_grad():
        for k, v in model.state_dict().items():
            if ".ln" in k or k.startswith("encoder.ln"):
                base = 1.0 if k.endswith("weight") else 0.0
                v.copy_(base + 0.2 * torch.randn(v.shape, generator=gen))
            elif k.startswith("heads") or k == "class_token" or k.endswith("bias"):
                v.copy_(0.3 * torch.randn(v.shape, generator=gen))


def build(name, cfg):
    from torchvision.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    model = VisionTransformer(**cfg).eval()
    perturb(model, torch.Generator().manual_seed(1))
    meta = {"weights": "fixture", "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
            "categories": [f"class {i}" for i in range(cfg["num_classes"])]}
    out = os.path.join(OUT, name)
    vit.convert(model, meta, name, out, check=True, weight_set="fixture", log=lambda s: None)
    # a second weight set with the same graphs (for swaps and weight-set selection)
    torch.manual_seed(7)
    other = VisionTransformer(**cfg).eval()
    perturb(other, torch.Generator().manual_seed(8))
    meta2 = dict(meta, weights="fixture2")
    vit.convert(other, meta2, name, out, check=False, weight_set="fixture2", log=lambda s: None)
    return model, other


SWAPS = [
    ("conv_proj", "conv_proj", {}),
    ("encoder.layers.0.ln_1", "encoder.layers.encoder_layer_0.ln_1", {}),
    ("pos_embedding", "encoder.pos_embedding", {}),
    ("encoder.layers.1", "encoder.layers.encoder_layer_1", {}),
    ("conv_proj+no_residual", "conv_proj", "no_residual"),
]


def swap_cases(name, cfg, model, other, x, tensors, cases, gen):
    """A part of the model replaced by the same part of the second weight set (fixture2)."""
    n = cfg["num_layers"]
    abl = {a[0]: (a[1], a[2]) for a in ablations(n)}
    for label, prefix, ab_name in SWAPS:
        sw_model = swapped(model, other, prefix)
        off, use_pos = abl[ab_name] if ab_name else ({}, 1.0)
        key = f"swap/{label}"
        with torch.no_grad():
            tensors[key + "/logits"] = ref_chain(sw_model, x, off, use_pos, "logits")
        xr = x.clone().requires_grad_(True)
        out = ref_chain(sw_model, xr, off, use_pos, n)
        target = torch.randn(out.shape, generator=gen)
        value = ((out - target) ** 2).sum()
        (g,) = torch.autograd.grad(value, xr)
        tensors[key + "/target"], tensors[key + "/grad"] = target, g
        cases.append({"kind": "swap", "part": label.split("+")[0], "weights": "fixture2",
                      "ablation": {"name": ab_name or "none", "remove": {str(k): v for k, v in off.items()},
                                   "use_pos": use_pos},
                      "layer": n, "loss": "l2", "value": value.item(), "output": key + "/logits",
                      "target": key + "/target", "grad": key + "/grad"})


def step_cases(model, cfg, tensors, cases, gen):
    """One step of each procedure, exactly as the essay's code: a <- blur(a - lr * grad)."""
    from torchvision.transforms.functional import gaussian_blur

    size = cfg["image_size"]
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    a0 = 0.7 + torch.randn(1, 3, size, size, generator=gen) / 20
    photo = torch.rand(1, 3, size, size, generator=gen)
    tensors["step/a0"], tensors["step/photo"] = a0, photo
    for normalize in (False, True):
        prep = (lambda t: (t - mean) / std) if normalize else (lambda t: t)  # noqa: E731
        with torch.no_grad():
            target = ref_chain(model, prep(photo), {}, 1.0, 2)
        a = a0.clone().requires_grad_(True)
        loss = (ref_chain(model, prep(a), {}, 1.0, 2) - target).abs().sum()
        (g,) = torch.autograd.grad(loss, a)
        with torch.no_grad():
            a1 = gaussian_blur(a0 - 0.05 * g, [3, 3], [1.3, 1.3])
        key = f"step/invert/{'norm' if normalize else 'raw'}"
        tensors[key] = a1
        cases.append({"kind": "invert_step", "layer": 2, "loss": "l1", "lr": 0.05, "sigma": 1.3,
                      "normalize": normalize, "a0": "step/a0", "photo": "step/photo", "output": key,
                      "value": loss.item()})
    # generation: one jittered step on a 48x48 canvas, crop at (y, x) = (7, 11)
    canvas = 0.7 + torch.randn(1, 3, 48, 48, generator=gen) / 20
    y, x = 7, 11
    c = canvas[:, :, y:y + size, x:x + size].clone().requires_grad_(True)
    logits = ref_chain(model, c, {}, 1.0, "logits")
    loss = (5.0 - logits[0, 3]).abs()
    (g,) = torch.autograd.grad(loss, c)
    out = canvas.clone()
    with torch.no_grad():
        out[:, :, y:y + size, x:x + size] = gaussian_blur(c - 0.5 * g, [3, 3], [0.8, 0.8])
    tensors["step/canvas"], tensors["step/generate"] = canvas, out
    cases.append({"kind": "generate_step", "index": 3, "constant": 5.0, "lr": 0.5, "sigma": 0.8,
                  "crop": [y, x], "canvas": "step/canvas", "output": "step/generate", "value": loss.item()})


def reference(name, model, n, size, ref, abls, gen):
    """PyTorch's outputs at every layer and input gradients under each ablation, plus a block alone."""
    x = torch.rand(1, 3, size, size, generator=gen)
    tensors = {"x": x}
    cases = []
    for ab_name, off, use_pos in abls:
        ab = {"name": ab_name, "remove": {str(k): v for k, v in off.items()}, "use_pos": use_pos}
        for layer in list(range(n + 1)) + ["logits"]:
            key = f"fwd/{ab_name}/{layer}"
            with torch.no_grad():
                tensors[key] = ref(model, x, off, use_pos, layer)
            cases.append({"kind": "forward", "ablation": ab, "layer": layer, "output": key})
        objectives = [("l2", 0), ("l2", 2), ("l1", n), ("l2", n), ("logit", "logits")]
        for loss, layer in dict.fromkeys(objectives):
            case = {"kind": "gradient", "ablation": ab, "layer": layer}
            gradient_case(case, lambda t: ref(model, t, off, use_pos, layer), x, loss,
                          f"grad/{ab_name}/{loss}/{layer}", gen, tensors)
            cases.append(case)
    # a block alone (input processing, then block n only)
    xr = x.clone().requires_grad_(True)
    out = ref(model, xr, {}, 1.0, n, blocks=[n])
    target = torch.randn(out.shape, generator=gen)
    value = ((out - target) ** 2).sum()
    (g,) = torch.autograd.grad(value, xr)
    tensors["only/target"], tensors["only/grad"], tensors["only/out"] = target, g, out.detach()
    cases.append({"kind": "only", "blocks": [n], "layer": n, "loss": "l2", "value": value.item(),
                  "target": "only/target", "grad": "only/grad", "output": "only/out"})
    return x, tensors, cases


def write_reference(name, tensors, cases):
    folder = os.path.join(OUT, name)
    write_safetensors(os.path.join(folder, "reference.safetensors"),
                              {k: v.detach() for k, v in tensors.items()}, {"torch": torch.__version__})
    with open(os.path.join(folder, "reference.json"), "w") as f:
        json.dump({"torch": torch.__version__, "weights": "fixture", "cases": cases}, f, indent=1)
        f.write("\n")
    print(f"wrote {folder}: {len(cases)} cases", file=sys.stderr)


# ---------------------------------------------------------------------------------------
# Attentionless models (tools/convert.py's reference MLP-Mixer and feed-forward-only ViT)

TINY_ATTNLESS = {
    "tiny_mixer": dict(arch="mixer", image_size=32, patch_size=8, num_layers=2, hidden_dim=16, tokens_mlp_dim=8,
                       channels_mlp_dim=32, order="token_first", num_classes=10),
    "tiny_mixer_cf": dict(arch="mixer", image_size=32, patch_size=8, num_layers=3, hidden_dim=16, tokens_mlp_dim=8,
                          channels_mlp_dim=32, order="channel_first", num_classes=10),
    "tiny_ffvit": dict(arch="ffvit", image_size=32, patch_size=8, num_layers=2, hidden_dim=16, tokens_mlp_dim=24,
                       channels_mlp_dim=32, order="channel_first", num_classes=10),
}

ATTNLESS_SWAPS = {"mixer": ["stem", "blocks.1"], "ffvit": ["patch_embed", "blocks.1"]}


def ref_chain_attnless(model, x, off, use_pos, layer, blocks=None):
    """PyTorch forward with the reference modules, through the given blocks."""
    n = len(model.blocks)
    t = model.embed(x, use_pos)
    last = n if layer == "logits" else layer
    for b in blocks or range(1, last + 1):
        t = mixer_ref.ref_block(model.blocks[b - 1], t, switches(off, b))
    return model.pool(t) if layer == "logits" else t


def perturb_attnless(model, gen):
    """Every tensor non-trivial (untrained LayerNorms are 1/0, the mixer head zero, biases tiny). The
    feed-forward-only ViT's Linear weights (std 0.02) are redrawn with std 1/sqrt(fan_in): beside biases
    of 0.3 their outputs would hardly vary across tokens, and its norms over the tokens would then be so
    ill-conditioned (|mean|/std ~ 200 without residuals) that PyTorch's own float32 result is 1e-5 off."""
    ff = isinstance(model, mixer_ref.RefLinearViT)
    with torch.no_grad():
        for k, v in model.state_dict().items():
            parts = k.split(".")
            if ff and len(parts) > 1 and parts[-2].startswith("fc") and parts[-1] == "weight":
                v.copy_(torch.randn(v.shape, generator=gen) / v.shape[1] ** 0.5)
            elif len(parts) > 1 and parts[-2].startswith("norm"):
                base = 1.0 if k.endswith("weight") else 0.0
                v.copy_(base + 0.2 * torch.randn(v.shape, generator=gen))
            elif k.startswith("head") or k == "cls_token" or k.endswith("bias"):
                v.copy_(0.3 * torch.randn(v.shape, generator=gen))


def build_attnless(name, cfg):
    cfg = mixer.finish_cfg(cfg, cfg["image_size"])
    cls = mixer_ref.RefMixer if cfg["arch"] == "mixer" else mixer_ref.RefLinearViT
    is_mixer = cfg["arch"] == "mixer"
    meta = {"weights": "fixture", "mean": HALF if is_mixer else IMAGENET_MEAN,
            "std": HALF if is_mixer else IMAGENET_STD,
            "categories": [f"class {i}" for i in range(cfg["num_classes"])]}
    out = os.path.join(OUT, name)
    torch.manual_seed(0)
    model = cls(cfg).eval()
    perturb_attnless(model, torch.Generator().manual_seed(1))
    mixer.convert(model, meta, name, out, check=True, weight_set="fixture", log=lambda s: None)
    torch.manual_seed(7)
    other = cls(cfg).eval()
    perturb_attnless(other, torch.Generator().manual_seed(8))
    mixer.convert(other, dict(meta, weights="fixture2"), name, out, check=False, weight_set="fixture2",
                  log=lambda s: None)
    return model, other, cfg


def attnless_swap_cases(model, other, x, n, tensors, cases, gen):
    """A part (the patch embedding, block 2) replaced by the same part of the second weight set."""
    for prefix in ATTNLESS_SWAPS[model.cfg["arch"]]:
        label = prefix
        sw_model = swapped(model, other, prefix)
        key = f"swap/{label}"
        with torch.no_grad():
            tensors[key + "/logits"] = ref_chain_attnless(sw_model, x, {}, 1.0, "logits")
        xr = x.clone().requires_grad_(True)
        out = ref_chain_attnless(sw_model, xr, {}, 1.0, n)
        target = torch.randn(out.shape, generator=gen)
        value = ((out - target) ** 2).sum()
        (g,) = torch.autograd.grad(value, xr)
        tensors[key + "/target"], tensors[key + "/grad"] = target, g
        cases.append({"kind": "swap", "part": label, "weights": "fixture2",
                      "ablation": {"name": "none", "remove": {}, "use_pos": 1.0},
                      "layer": n, "loss": "l2", "value": value.item(), "output": key + "/logits",
                      "target": key + "/target", "grad": key + "/grad"})


def main():
    warnings.filterwarnings("ignore")
    torch.set_grad_enabled(True)
    for name, cfg in TINY.items():
        model, other = build(name, cfg)
        n = cfg["num_layers"]
        gen = torch.Generator().manual_seed(3)
        x, tensors, cases = reference(name, model, n, cfg["image_size"], ref_chain, ablations(n), gen)
        if name == "tiny_vit":
            step_cases(model, cfg, tensors, cases, gen)
            swap_cases(name, cfg, model, other, x, tensors, cases, gen)
        write_reference(name, tensors, cases)
    for name, cfg in TINY_ATTNLESS.items():
        model, other, cfg = build_attnless(name, cfg)
        n = cfg["num_layers"]
        gen = torch.Generator().manual_seed(3)
        abls = [a for a in ablations(n) if cfg["arch"] == "ffvit" or a[0] != "no_pos"]
        x, tensors, cases = reference(name, model, n, cfg["image_size"], ref_chain_attnless, abls, gen)
        attnless_swap_cases(model, other, x, n, tensors, cases, gen)
        write_reference(name, tensors, cases)


if __name__ == "__main__":
    main()
