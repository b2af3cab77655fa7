"""What the token models (ViT, MLP-Mixer, feed-forward-only ViT) share: the six block switches,
the chain of stem → blocks → head graphs (forward and VJP each), its export, and its
verification against the reference model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .export import distinct_values, export_modules
from .manifest import layer_entry
from .verify import Log, check_init, check_piece, check_same, check_switch_settings, random_head

SWITCHES = ["use_ln1", "use_attn", "use_res1", "use_ln2", "use_mlp", "use_res2"]
ABLATIONS = [
    {s: 1.0 for s in SWITCHES},
    {"use_ln1": 0.0, "use_attn": 1.0, "use_res1": 1.0, "use_ln2": 0.0, "use_mlp": 1.0, "use_res2": 1.0},
    {"use_ln1": 1.0, "use_attn": 0.0, "use_res1": 1.0, "use_ln2": 1.0, "use_mlp": 1.0, "use_res2": 1.0},
    {"use_ln1": 1.0, "use_attn": 1.0, "use_res1": 0.0, "use_ln2": 1.0, "use_mlp": 1.0, "use_res2": 0.0},
    {"use_ln1": 1.0, "use_attn": 1.0, "use_res1": 0.0, "use_ln2": 1.0, "use_mlp": 0.0, "use_res2": 0.0},
]
HEAD_SAVED = ["s_mean", "s_rstd"]

Modules = Callable[[dict, dict, dict], Dict[str, nn.Module]]


@dataclass
class TokenGraphs:
    """A token model's graph pieces: the tensors of the stem, of block i and of the head, and
    `modules(stem_t, block_t, head_t)` making the six graph modules (stem/block/head .fwd/.vjp)."""

    modules: Modules
    stem_t: Dict[str, torch.Tensor]
    block_t: Callable[[int], Dict[str, torch.Tensor]]
    head_t: Dict[str, torch.Tensor]
    stem_switches: List[str]
    block_saved: List[str]
    image_size: int
    seq: int
    dim: int
    num_classes: int
    num_layers: int


@dataclass
class TokenReference:
    """The reference model a token model's graphs are checked against."""

    stem: Callable[[torch.Tensor, float], torch.Tensor]  # (image, use_pos) -> tokens
    blocks: Sequence[nn.Module]
    block: Callable[[nn.Module, torch.Tensor, Dict[str, float]], torch.Tensor]  # block with switches
    block_ablations: List[Dict[str, float]]
    block_label: str  # e.g. "EncoderBlock"
    features: Callable[[torch.Tensor], torch.Tensor]  # tokens -> the head's input (final norm, pooling)
    head_keys: Tuple[str, str]  # the head's linear weight and bias
    forward: Callable[[torch.Tensor], torch.Tensor]  # the whole model: image -> logits


def token_layers(stem_switches: List[str], blocks: List[Tuple[str, str]]) -> List[dict]:
    """The manifest's layers: input processing, the blocks ((name, tensor prefix)), the logits."""
    return [layer_entry("input", "stem", "", stem_switches)] + \
        [layer_entry(name, "block", prefix, SWITCHES) for name, prefix in blocks] + \
        [layer_entry("logits", "head", "", [])]


def export_token_graphs(out: str, tg: TokenGraphs) -> Dict[str, dict]:
    """Writes out/graphs/{stem,block,head}.{fwd,vjp}.onnx; returns the manifest's graph entries."""
    one = torch.tensor(1.0)
    sws = [one] * len(SWITCHES)
    x_img = torch.rand(1, 3, tg.image_size, tg.image_size)
    x_tok = torch.randn(1, tg.seq, tg.dim)
    mods = tg.modules(tg.stem_t, tg.block_t(0), tg.head_t)
    with torch.no_grad():
        saved_block = mods["block.fwd"](x_tok, *sws)[1:]
        saved_head = mods["head.fwd"](x_tok)[1:]
    specs = {
        "stem.fwd": ((x_img, *[one] * len(tg.stem_switches)), ["x"] + tg.stem_switches, ["y"]),
        "stem.vjp": ((torch.randn(1, tg.seq, tg.dim),), ["dy"], ["dx"]),
        "block.fwd": ((x_tok, *sws), ["x"] + SWITCHES, ["y"] + tg.block_saved),
        "block.vjp": ((x_tok, *sws, x_tok, *saved_block), ["dy"] + SWITCHES + ["x"] + tg.block_saved, ["dx"]),
        "head.fwd": ((x_tok,), ["x"], ["y"] + HEAD_SAVED),
        "head.vjp": ((torch.randn(1, tg.num_classes), x_tok, *saved_head), ["dy", "x"] + HEAD_SAVED, ["dx"]),
    }
    rnd = distinct_values(0, torch.randn)
    return export_modules(out, tg.modules(rnd(tg.stem_t), rnd(tg.block_t(0)), rnd(tg.head_t)), specs, batch=True)


def _check_stem(tg: TokenGraphs, mods, ref: TokenReference, tol: float, log: Log) -> float:
    worst = 0.0
    for use_pos in ((1.0, 0.0) if tg.stem_switches else (1.0,)):
        args = (torch.tensor(use_pos),) if tg.stem_switches else ()
        label = f"stem use_pos={use_pos:g}" if tg.stem_switches else "stem"
        x = torch.rand(1, 3, tg.image_size, tg.image_size)
        worst = max(worst, check_piece(label, mods["stem.fwd"], mods["stem.vjp"], args, (),
                                       lambda t: ref.stem(t, use_pos), x, tol, log))
    return worst


def _check_blocks(tg: TokenGraphs, ref: TokenReference, tol: float, log: Log, check_layers: int) -> float:
    """The first check_layers blocks: block 0 under every ablation and against the reference block's
    own forward, the others with every switch on."""
    worst = 0.0
    for i, block in enumerate(ref.blocks[:check_layers]):
        m = tg.modules(tg.stem_t, tg.block_t(i), tg.head_t)
        settings = ref.block_ablations if i == 0 else ref.block_ablations[:1]
        worst = max(worst, check_switch_settings(
            f"block {i}", m["block.fwd"], m["block.vjp"], settings, SWITCHES,
            lambda x, sw: ref.block(block, x, sw), lambda: torch.randn(1, tg.seq, tg.dim), tol, log))
        if i == 0:
            x = torch.randn(1, tg.seq, tg.dim)
            with torch.no_grad():
                got, want = m["block.fwd"](x, *[torch.tensor(1.0)] * len(SWITCHES))[0], block(x)
            check_same(f"block 0 vs {ref.block_label}", got, want,
                       f"block 0 differs from the reference {ref.block_label}", tol, log)
    return worst


def _check_head_and_chain(tg: TokenGraphs, ref: TokenReference, tol: float, log: Log) -> float:
    """The head (with a random linear layer where the model's is zero, as untrained torchvision and
    timm heads are) and the whole chain of graph modules against the reference model."""
    w, b = ref.head_keys
    zero = bool(tg.head_t[w].abs().max() == 0)
    ht = random_head(tg.head_t, w, b) if zero else tg.head_t
    hm = tg.modules(tg.stem_t, tg.block_t(0), ht)
    ref_head = lambda t: F.linear(ref.features(t), ht[w], ht[b])  # noqa: E731
    worst = check_piece("head", hm["head.fwd"], hm["head.vjp"], (), (), ref_head,
                        torch.randn(1, tg.seq, tg.dim), tol, log)
    one = torch.tensor(1.0)
    x = torch.rand(1, 3, tg.image_size, tg.image_size)
    with torch.no_grad():
        t = hm["stem.fwd"](x, *[one] * len(tg.stem_switches))
        for i in range(tg.num_layers):
            t = tg.modules(tg.stem_t, tg.block_t(i), tg.head_t)["block.fwd"](t, *[one] * len(SWITCHES))[0]
        logits = hm["head.fwd"](t)[0]
        if zero:
            u = ref.stem(x, 1.0)
            for block in ref.blocks:
                u = block(u)
            want = ref_head(u)
        else:
            want = ref.forward(x)
    check_same("whole model logits", logits, want, "chained logits differ from the reference model", tol, log)
    return worst


def _check_batch(tg: TokenGraphs, mods, tol: float, log: Log) -> None:
    """Each graph module on a batch of 3 against the same module on each image alone: the batch axis
    mixes nothing across images (forward outputs, saved values and input gradients)."""
    sw = [torch.tensor(1.0)] * len(SWITCHES)
    stem_sw = [torch.tensor(1.0)] * len(tg.stem_switches)
    gen = torch.Generator().manual_seed(7)  # its own draws: the callers' random stream stays as it was
    x_img = torch.rand(3, 3, tg.image_size, tg.image_size, generator=gen)
    x_tok = torch.randn(3, tg.seq, tg.dim, generator=gen)
    with torch.no_grad():
        runs = {
            "stem.fwd": lambda x: (mods["stem.fwd"](x, *stem_sw),),
            "stem.vjp": lambda dy: (mods["stem.vjp"](dy),),
            "block.fwd": lambda x: mods["block.fwd"](x, *sw),
            "block.vjp": lambda x: (mods["block.vjp"](x, *sw, x * 0.5, *mods["block.fwd"](x * 0.5, *sw)[1:]),),
            "head.fwd": lambda x: mods["head.fwd"](x),
            "head.vjp": lambda x: (mods["head.vjp"](x[:, 0, :1] * torch.linspace(-1, 1, tg.num_classes), x,
                                                    *mods["head.fwd"](x)[1:]),),
        }
        for name, run in runs.items():
            x = x_img if name == "stem.fwd" else x_tok
            whole = run(x)
            for i in range(3):
                for got, want in zip(whole, run(x[i:i + 1])):
                    check_same(f"{name} batch image {i}", got[i:i + 1], want,
                               f"{name} on a batch differs from one image alone", tol, log)


def check_token_model(title: str, tg: TokenGraphs, ref: TokenReference, sd: Dict[str, torch.Tensor],
                      init_spec, untrained: bool, tol: float, log: Log, check_layers: int) -> None:
    """Every graph module against torch.autograd through the reference model (see the helpers above),
    and an untrained model's tensors against the recorded init distributions."""
    log(f"checking {title} against torch.autograd, tolerance {tol:g} relative")
    torch.manual_seed(1234)
    mods = tg.modules(tg.stem_t, tg.block_t(0), tg.head_t)
    worst = _check_stem(tg, mods, ref, tol, log)
    worst = max(worst, _check_blocks(tg, ref, tol, log, check_layers))
    worst = max(worst, _check_head_and_chain(tg, ref, tol, log))
    _check_batch(tg, mods, tol, log)
    if untrained:
        check_init(sd, log, init_spec)
    log(f"check passed: worst relative error {worst:.2e}")
