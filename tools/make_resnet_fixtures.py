#!/usr/bin/env python3
"""Builds the ResNet test fixtures: tiny torchvision ResNets converted with tools/convert.py's
ResNet family (tools/vitrep_convert/resnet.py),
and PyTorch's outputs per chain position and input gradients (torch.autograd) for a fixed
input, with and without ablations. Regenerate with:

    python3 tools/make_resnet_fixtures.py      # writes tests/fixtures/tiny_resnet*/

Everything is seeded, so the files are the same on every run with the same torch.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

import torch
import torch.nn.functional as F

from fixture_cases import gradient_case, swapped
from vitrep_convert import resnet
from vitrep_convert.weights import IMAGENET_MEAN, IMAGENET_STD, write_safetensors

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")

# two tiny ResNets: bottlenecks at 64² (layer1 has two blocks sharing one graph), and
# basic blocks at an odd size (45²: transposed convolutions with output_padding 0 and 1)
TINY = {
    "tiny_resnet": dict(arch=dict(block="bottleneck", layers=[3, 1, 1, 1], planes=[4, 8, 8, 16], stem=8,
                                  num_classes=10), size=64),
    "tiny_resnet_odd": dict(arch=dict(block="basic", layers=[1, 2, 1, 1], planes=[8, 8, 16, 16], stem=8,
                                      num_classes=7), size=45),
}


def ablations(n):
    """(name, {chain position (1-based block): [switches off]})"""
    every = range(1, n + 1)
    return [
        ("none", {}),
        ("no_residual", {i: ["use_res1", "use_res2"] for i in every}),
        ("no_res1_2_3", {i: ["use_res1"] for i in (2, 3)}),  # res1 alone drops the shortcut too
        ("no_bn", {i: ["use_bn"] for i in every}),  # for a future "bn" part of the runtime
    ]


def switches(off: dict, pos: int) -> dict:
    return {s: 0.0 if s in off.get(pos, []) else 1.0 for s in resnet.BLOCK_SWITCHES}


def ref_chain(model, x, off, layer):
    """PyTorch forward through torchvision's modules, to chain position `layer` or the logits."""
    blocks = resnet.blocks_of(model)
    t = resnet.ref_stem(model, x, 1.0)
    last = len(blocks) if layer == "logits" else layer
    for pos in range(1, last + 1):
        t = resnet.ref_block(blocks[pos - 1][1], t, switches(off, pos))
    return resnet.ref_head(model, t) if layer == "logits" else t


def perturb(model, gen):
    """Non-trivial batch norms: untrained ones are weight 1, bias 0, mean 0, variance 1."""
    with torch.no_grad():
        for k, v in model.state_dict().items():
            if k.endswith("num_batches_tracked") or k.startswith("fc.") or v.dim() != 1:
                continue
            r = torch.randn(v.shape, generator=gen)
            if k.endswith("running_var"):
                v.copy_(torch.exp(0.3 * r))
            elif k.endswith("weight"):
                v.copy_(1.0 + 0.2 * r)
            else:
                v.copy_(0.2 * r)


def margins(model, x, off) -> float:
    """The smallest distance of a ReLU input from 0, or of a max-pool window's largest value
    from its second largest, relative to that tensor's largest magnitude. ReLU masks and
    max-pool choices are discontinuous: an input within float32 rounding of such a
    boundary may be decided differently by ONNX Runtime and PyTorch, moving that unit's
    whole gradient. Fixtures use inputs whose margins are far above rounding (1e-7)."""
    worst = []

    def relu_in(z):
        worst.append(z.abs().min().item() / z.abs().max().item())
        return F.relu(z)

    with torch.no_grad():
        a = relu_in(model.bn1(model.conv1(x)))
        p = model.maxpool
        u = F.pad(a, (p.padding,) * 4, value=-1.0).unfold(2, p.kernel_size, p.stride).unfold(3, p.kernel_size, p.stride)
        top = u.reshape(*u.shape[:4], -1).topk(2, dim=-1).values
        worst.append((top[..., 0] - top[..., 1])[top[..., 0] > 0].min().item() / a.max().item())
        t = p(a)
        for pos, (name, block) in enumerate(resnet.blocks_of(model), 1):
            sw = switches(off, pos)
            bn = (lambda m, v: m(v)) if sw["use_bn"] else (lambda m, v: v)  # noqa: E731
            pairs = resnet.block_kind(block)
            h = t
            for i, (cn, bname) in enumerate(pairs):
                h = bn(getattr(block, bname), getattr(block, cn)(h))
                if i < len(pairs) - 1:
                    h = relu_in(h)
            sc = t if block.downsample is None else bn(block.downsample[1], block.downsample[0](t))
            t = relu_in(h + sc if sw["use_res1"] and sw["use_res2"] else h)
    return min(worst)


MARGIN = 1.5e-5


def build(name, cfg, seed):
    arch = cfg["arch"]
    torch.manual_seed(seed)
    model = resnet.custom_resnet(arch["block"], arch["layers"], arch["planes"], arch["stem"], arch["num_classes"])
    model.eval()
    perturb(model, torch.Generator().manual_seed(seed + 1))
    return model


def main():
    warnings.filterwarnings("ignore")
    torch.set_grad_enabled(True)
    for name, cfg in TINY.items():
        out = os.path.join(OUT, name)
        model = build(name, cfg, 0)
        other = build(name, cfg, 7)
        meta = {"weights": "fixture", "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
                "categories": [f"class {i}" for i in range(cfg["arch"]["num_classes"])]}
        resnet.convert_resnet(model, meta, name, out, check=True, weight_set="fixture", log=lambda s: None,
                              image_size=cfg["size"])
        resnet.convert_resnet(other, dict(meta, weights="fixture2"), name, out, check=False,
                              weight_set="fixture2", log=lambda s: None, image_size=cfg["size"])
        n = len(resnet.blocks_of(model))
        size = cfg["size"]
        for seed in range(3, 100):  # the first input far enough from every ReLU and max-pool boundary
            gen = torch.Generator().manual_seed(seed)
            x = torch.rand(1, 3, size, size, generator=gen)
            margin = min(margins(model, x, off) for _, off in ablations(n))
            if margin >= MARGIN:
                break
        else:
            raise SystemExit(f"error: no input seed gives {name} margins of {MARGIN:g}")
        tensors = {"x": x}
        cases = []
        for ab_name, off in ablations(n):
            ab = {"name": ab_name, "remove": {str(k): v for k, v in off.items()}, "use_pos": 1.0}
            for layer in list(range(n + 1)) + ["logits"]:
                key = f"fwd/{ab_name}/{layer}"
                with torch.no_grad():
                    tensors[key] = ref_chain(model, x, off, layer)
                cases.append({"kind": "forward", "ablation": ab, "layer": layer, "output": key})
            objectives = [("l2", layer) for layer in range(n + 1)] + [("l1", n), ("logit", "logits")]
            if ab_name not in ("none", "no_residual"):
                objectives = [("l2", n), ("logit", "logits")]
            for loss, layer in objectives:
                case = {"kind": "gradient", "ablation": ab, "layer": layer}
                _, o, d = gradient_case(case, lambda t: ref_chain(model, t, off, layer), x, loss,
                                        f"grad/{ab_name}/{loss}/{layer}", gen, tensors)
                if loss == "l1":
                    margin = min(margin, d.abs().min().item() / o.abs().max().item())
                cases.append(case)
        # a block's tensors swapped in from the second weight set (a shared graph where there is one)
        part = "layer1.1" if name == "tiny_resnet" else "layer2.1"
        sw_model = swapped(model, other, part)
        key = f"swap/{part}"
        with torch.no_grad():
            tensors[key + "/logits"] = ref_chain(sw_model, x, {}, "logits")
        xr = x.clone().requires_grad_(True)
        o = ref_chain(sw_model, xr, {}, n)
        target = torch.randn(o.shape, generator=gen) * o.detach().std()
        value = ((o - target) ** 2).sum()
        (g,) = torch.autograd.grad(value, xr)
        tensors[key + "/target"], tensors[key + "/grad"] = target, g
        cases.append({"kind": "swap", "part": part, "weights": "fixture2", "layer": n, "loss": "l2",
                      "value": value.item(), "output": key + "/logits", "target": key + "/target",
                      "grad": key + "/grad"})
        write_safetensors(os.path.join(out, "reference.safetensors"),
                                  {k: v.detach() for k, v in tensors.items()}, {"torch": torch.__version__})
        with open(os.path.join(out, "reference.json"), "w") as f:
            json.dump({"torch": torch.__version__, "weights": "fixture", "input_seed": seed, "margin": margin,
                       "cases": cases}, f, indent=1)
            f.write("\n")
        if margin < MARGIN:
            raise SystemExit(f"error: {name}: an L1 target lies within {margin:.1e} of its output")
        print(f"wrote {out}: {len(cases)} cases, input seed {seed}, margin {margin:.1e}", file=sys.stderr)


if __name__ == "__main__":
    main()
