"""torchvision ResNets as per-block ONNX graphs for vitrep.

The chain is the stem (conv1, bn1, relu, maxpool), one position per residual block
(layer1.0 … layer4.2 for ResNet-50: 16 positions) and the head (avgpool, fc). Each
position has a forward graph (x -> y plus the activations its backward pass needs) and
a hand-written vector-Jacobian-product graph (dy + saved activations -> dx):

- convolution -> ConvTranspose with the same weight, stride, padding, dilation and
  groups, and the output_padding that gives back the input size exactly;
- batch norm (eval mode) -> a per-channel scale w / sqrt(running_var + eps) (the shift
  has no gradient);
- ReLU -> a mask from its saved output;
- max-pool -> the indices of ONNX MaxPool (flat over C·H·W) saved by the forward and a
  ScatterElements(reduction="add") into zeros, exact for overlapping windows;
- global average pool -> dy / (h·w) broadcast; linear -> dy @ W.

Blocks of the same structure and shapes (every block of a stage after the first) share
one graph file; the layer's `prefix` (e.g. `layer3.4.`) selects its tensors. Tensor names
are torchvision's state-dict keys; `num_batches_tracked` (an int64 counter that eval-mode
batch norm never reads) is left out of the manifest's tensors and of the weight sets.

Switches (graph inputs, 1 = on): every block has `use_bn` (0 makes each of its batch
norms, the shortcut's included, the identity) and `use_res1`, `use_res2`: the block's one
shortcut is multiplied by use_res1 · use_res2, so the runtime's `res1`, `res2` and
`residual` ablations all drop the shortcut addition. The stem has `use_bn`.

    python3 tools/convert.py resnet50 --weights untrained --graphs-only --out weights/resnet50 --check
    python3 tools/convert.py resnet_custom --arch layers=2:1:1:1,planes=4:8:8:16,stem=8 --image-size 64 --out /tmp/r
"""

from __future__ import annotations

import math
import os
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .export import distinct_values, save_graph
from .family import Family, custom_arch, need_out, register, switch_line
from .layers import MaxPoolIndexed, Params, max_unpool, maxpool_vjp, relu_mask
from .manifest import build_manifest, layer_entry, write_manifest
from .verify import Log, check_init, check_piece, check_same, check_switch_settings
from .weights import build_model, load_checkpoint, tensor_table, torchvision_enum, write_weight_set

STEM_SWITCHES = ["use_bn"]
BLOCK_SWITCHES = ["use_bn", "use_res1", "use_res2"]

SWITCH_MEANING = {
    "use_bn": "every batch norm of the block (bn1..bn3 and the shortcut's downsample.1; the stem's bn1 at "
              "position 0) becomes the identity",
    "use_res1": "the block's shortcut addition (identity or downsample); the same shortcut as use_res2",
    "use_res2": "the block's shortcut addition (identity or downsample); the same shortcut as use_res1",
}

RESNETS: Dict[str, dict] = {
    "resnet50": dict(block="bottleneck", layers=[3, 4, 6, 3]),
}
DESCRIPTIONS = {
    "resnet50": "torchvision ResNet-50 (25.6M params; IMAGENET1K_V1, V2 224), one graph per bottleneck",
    "resnet_custom": "a torchvision ResNet of any depth and width (--arch layers=..,planes=..,stem=..; untrained "
                     "or --weights CHECKPOINT)",
}


# ---------------------------------------------------------------------------------------
# Geometry


def conv_geom(conv: nn.Conv2d, hw: Tuple[int, int]) -> dict:
    """A convolution's hyper-parameters, its output size for input hw, and the
    output_padding that makes conv_transpose2d return exactly hw."""
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        raise SystemExit(f"error: convolution {conv} has padding {conv.padding!r} ({conv.padding_mode}): "
                         "expected explicit zero padding")
    k, s, p, d = conv.kernel_size, conv.stride, conv.padding, conv.dilation
    out, op = [], []
    for i in range(2):
        o = (hw[i] + 2 * p[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1
        if o < 1:
            raise SystemExit(f"error: the image is too small: a convolution gets {hw[0]}x{hw[1]} and would output "
                             f"{o} pixels")
        back = (o - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + 1
        out.append(o)
        op.append(hw[i] - back)
        assert 0 <= op[i] < max(s[i], d[i]), (hw, conv)
    return {"kernel": tuple(k), "stride": tuple(s), "padding": tuple(p), "dilation": tuple(d), "groups": conv.groups,
            "output_padding": tuple(op), "in": tuple(hw), "out": tuple(out)}


def pool_geom(pool: nn.MaxPool2d, hw: Tuple[int, int]) -> dict:
    pair = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v, v)  # noqa: E731
    k, s, p, d = pair(pool.kernel_size), pair(pool.stride), pair(pool.padding), pair(pool.dilation)
    if pool.ceil_mode or d != (1, 1):
        raise SystemExit("error: max-pools with ceil_mode or dilation are not supported")
    out = tuple((hw[i] + 2 * p[i] - (k[i] - 1) - 1) // s[i] + 1 for i in range(2))
    if min(out) < 1:
        raise SystemExit(f"error: the image is too small: the max-pool gets {hw[0]}x{hw[1]}")
    return {"kernel": k, "stride": s, "padding": p, "in": tuple(hw), "out": out}


def block_kind(block: nn.Module) -> List[Tuple[str, str]]:
    """The (conv, bn) pairs of a block's main path, in order."""
    from torchvision.models.resnet import BasicBlock, Bottleneck

    if isinstance(block, Bottleneck):
        return [("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")]
    if isinstance(block, BasicBlock):
        return [("conv1", "bn1"), ("conv2", "bn2")]
    raise SystemExit(f"error: unsupported residual block {type(block).__name__}: expected Bottleneck or BasicBlock")


def check_norm(bn: nn.Module) -> None:
    if not isinstance(bn, nn.BatchNorm2d) or not bn.affine or not bn.track_running_stats:
        raise SystemExit(f"error: unsupported normalization {bn}: expected an affine BatchNorm2d with running stats")


# ---------------------------------------------------------------------------------------
# Graph modules


class ResParams(Params):
    """Params with batch norm as a per-channel affine map and convolutions by geometry."""

    eps = 1e-5

    def bn(self, name: str, use_bn) -> Tuple[torch.Tensor, torch.Tensor]:
        """(scale, shift) of an eval-mode batch norm, mixed with the identity by use_bn;
        the scale depends on weights only, so the runtime folds it once per session."""
        w, b = self.w(name + ".weight"), self.w(name + ".bias")
        s = w / torch.sqrt(self.w(name + ".running_var") + self.eps)
        t = b - self.w(name + ".running_mean") * s
        s = use_bn * s + (1.0 - use_bn)
        return s.reshape(1, -1, 1, 1), (use_bn * t).reshape(1, -1, 1, 1)

    def bn_scale(self, name: str, use_bn) -> torch.Tensor:
        s = self.w(name + ".weight") / torch.sqrt(self.w(name + ".running_var") + self.eps)
        return (use_bn * s + (1.0 - use_bn)).reshape(1, -1, 1, 1)

    def conv(self, x, name: str, g: dict):
        return F.conv2d(x, self.w(name + ".weight"), None, g["stride"], g["padding"], g["dilation"], g["groups"])

    def conv_t(self, dy, name: str, g: dict):
        """The convolution's input gradient. A stride-1 convolution's is itself a convolution
        (transposed, flipped kernel), which onnxruntime runs with its blocked NCHWc kernels, far
        faster than ConvTranspose; strided ones stay transposed convolutions."""
        w, k = self.w(name + ".weight"), g["kernel"]
        pad = tuple(k[i] - 1 - g["padding"][i] for i in range(2))
        if (g["stride"] == (1, 1) and g["dilation"] == (1, 1) and g["groups"] == 1
                and g["output_padding"] == (0, 0) and min(pad) >= 0):
            wt = w.transpose(0, 1)
            return F.conv2d(dy, wt if k == (1, 1) else wt.flip([2, 3]), None, 1, pad)
        return F.conv_transpose2d(dy, w, None, g["stride"], g["padding"], g["output_padding"], g["groups"],
                                  g["dilation"])


class StemFwd(ResParams):
    """image [1,3,H,W] -> [1,C,h,w]: conv1, bn1, relu, maxpool. Saves the pool's input (the
    ReLU output), from which the VJP finds each window's maximum."""

    def __init__(self, tensors, conv: dict, pool: dict, eps: float):
        super().__init__(tensors)
        self.g, self.pool, self.eps = conv, pool, eps
        self.c = int(tensors["conv1.weight"].shape[0])

    def forward(self, x, use_bn):
        s, t = self.bn("bn1", use_bn)
        a = F.relu(self.conv(x, "conv1", self.g) * s + t)
        y = F.max_pool2d(a, self.pool["kernel"], self.pool["stride"], self.pool["padding"])
        return y, a


class StemVjp(StemFwd):
    def forward(self, dy, use_bn, a):
        da = maxpool_vjp(dy, a, self.pool)
        return self.conv_t(relu_mask(da, a) * self.bn_scale("bn1", use_bn), "conv1", self.g)


class StemFwdIndexed(StemFwd):
    """The stem for CPU backends: as StemFwd, saving also MaxPool's indices (int64), so that the VJP
    is one scatter-add instead of maxpool_vjp's window scan."""

    def forward(self, x, use_bn):
        s, t = self.bn("bn1", use_bn)
        a = F.relu(self.conv(x, "conv1", self.g) * s + t)
        y, i = MaxPoolIndexed.apply(a, self.pool)
        return y, a, i


class StemVjpIndexed(StemFwd):
    def forward(self, dy, use_bn, a, i):
        da = max_unpool(dy, i, a)
        return self.conv_t(relu_mask(da, a) * self.bn_scale("bn1", use_bn), "conv1", self.g)


class BlockFwd(ResParams):
    """A residual block (Bottleneck or BasicBlock): y = relu(main(x) + r · shortcut(x)),
    r = use_res1 · use_res2. Saves y and every inner ReLU output."""

    def __init__(self, tensors, main: List[Tuple[str, str, dict]], down: Optional[Tuple[str, str, dict]], eps):
        super().__init__(tensors)
        self.main, self.down, self.eps = main, down, eps

    def forward(self, x, use_bn, use_res1, use_res2):
        h, saved = x, []
        for i, (cn, bn, g) in enumerate(self.main):
            s, t = self.bn(bn, use_bn)
            h = self.conv(h, cn, g) * s + t
            if i < len(self.main) - 1:
                h = F.relu(h)
                saved.append(h)
        if self.down is None:
            sc = x
        else:
            cn, bn, g = self.down
            s, t = self.bn(bn, use_bn)
            sc = self.conv(x, cn, g) * s + t
        y = F.relu(h + use_res1 * use_res2 * sc)
        return (y, y.clone(), *saved)


class BlockVjp(BlockFwd):
    def forward(self, dy, use_bn, use_res1, use_res2, y, *saved):
        g = relu_mask(dy, y)
        if self.down is None:
            dsc = g
        else:
            cn, bn, geo = self.down
            dsc = self.conv_t(g * self.bn_scale(bn, use_bn), cn, geo)
        h = g
        for i in range(len(self.main) - 1, -1, -1):
            cn, bn, geo = self.main[i]
            h = self.conv_t(h * self.bn_scale(bn, use_bn), cn, geo)
            if i > 0:
                h = relu_mask(h, saved[i - 1])
        return h + use_res1 * use_res2 * dsc


class HeadFwd(Params):
    """[1,C,h,w] -> logits: global average pool and fc."""

    def forward(self, x):
        return F.linear(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1), self.w("fc.weight"), self.w("fc.bias"))


class HeadVjp(Params):
    def __init__(self, tensors, hw: Tuple[int, int]):
        super().__init__(tensors)
        self.hw, self.c = hw, int(tensors["fc.weight"].shape[1])

    def forward(self, dy):
        c = self.c
        g = torch.matmul(dy, self.w("fc.weight")) * (1.0 / (self.hw[0] * self.hw[1]))
        return g.reshape(1, c, 1, 1).expand(1, c, self.hw[0], self.hw[1])


# ---------------------------------------------------------------------------------------
# torchvision references (ground truth), with the switches built from its own submodules


def ref_stem(model: nn.Module, x: torch.Tensor, use_bn: float) -> torch.Tensor:
    z = model.conv1(x)
    return model.maxpool(model.relu(model.bn1(z) if use_bn else z))


def ref_block(block: nn.Module, x: torch.Tensor, sw: Dict[str, float]) -> torch.Tensor:
    bn = (lambda m, t: m(t)) if sw["use_bn"] else (lambda m, t: t)  # noqa: E731
    pairs = block_kind(block)
    h = x
    for i, (cn, bname) in enumerate(pairs):
        h = bn(getattr(block, bname), getattr(block, cn)(h))
        if i < len(pairs) - 1:
            h = block.relu(h)
    sc = x if block.downsample is None else bn(block.downsample[1], block.downsample[0](x))
    return block.relu(h + sc if sw["use_res1"] and sw["use_res2"] else h)


def ref_head(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model.fc(torch.flatten(model.avgpool(x), 1))


def blocks_of(model: nn.Module) -> List[Tuple[str, nn.Module]]:
    return [(f"layer{s}.{j}", b) for s in range(1, 5) for j, b in enumerate(getattr(model, f"layer{s}"))]


# ---------------------------------------------------------------------------------------
# Init distributions (torchvision's ResNet.__init__), recorded per tensor


def init_spec(key: str, shape: Tuple[int, ...], fc_in: int) -> dict:
    leaf = key.split(".")[-1]
    if key.startswith("fc."):  # nn.Linear default: kaiming_uniform(a=sqrt(5)), bias U(±1/sqrt(fan_in))
        b = 1.0 / math.sqrt(fc_in)
        return {"kind": "uniform", "low": -b, "high": b}
    if leaf == "weight" and len(shape) == 4:  # kaiming_normal_(mode="fan_out", nonlinearity="relu")
        return {"kind": "normal", "mean": 0.0, "std": math.sqrt(2.0 / (shape[0] * shape[2] * shape[3]))}
    if leaf in ("weight", "running_var"):  # batch norm
        return {"kind": "constant", "value": 1.0}
    return {"kind": "constant", "value": 0.0}  # batch-norm bias and running mean


# ---------------------------------------------------------------------------------------
# Model construction


def custom_resnet(block: str, layers: List[int], planes: List[int], stem: int, num_classes: int,
                  width_per_group: int = 64, groups: int = 1) -> nn.Module:
    """torchvision's ResNet class with its own _make_layer, blocks and init, but any
    stem width and per-stage widths (torchvision fixes them at 64 and 64,128,256,512)."""
    from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

    blk = {"bottleneck": Bottleneck, "basic": BasicBlock}[block]

    class CustomResNet(ResNet):
        def __init__(self):
            nn.Module.__init__(self)
            self._norm_layer = nn.BatchNorm2d
            self.inplanes, self.dilation, self.groups, self.base_width = stem, 1, groups, width_per_group
            self.conv1 = nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(stem)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            for s in range(4):
                setattr(self, f"layer{s + 1}", self._make_layer(blk, planes[s], layers[s], stride=1 if s == 0 else 2))
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(planes[3] * blk.expansion, num_classes)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)

    return CustomResNet()


def parse_arch(ap, text: Optional[str]) -> dict:
    """layers=2:1:1:1,planes=4:8:8:16,stem=8[,classes=10][,block=bottleneck|basic]"""
    if not text:
        ap.error("resnet_custom needs --arch layers=A:B:C:D,planes=A:B:C:D,stem=S[,classes=N][,block=bottleneck|basic]")
    cfg: dict = {"block": "bottleneck", "num_classes": 1000}
    for part in text.split(","):
        k, _, v = part.partition("=")
        nums = v.split(":")
        if k == "block" and v in ("bottleneck", "basic"):
            cfg["block"] = v
        elif k in ("layers", "planes") and len(nums) == 4 and all(n.isdigit() and int(n) > 0 for n in nums):
            cfg[k] = [int(n) for n in nums]
        elif k in ("stem", "classes") and v.isdigit() and int(v) > 0:
            cfg["stem" if k == "stem" else "num_classes"] = int(v)
        else:
            ap.error(f"--arch entry {part!r}: expected layers=A:B:C:D, planes=A:B:C:D (positive), stem=S, "
                     "classes=N or block=bottleneck|basic")
    missing = [k for k in ("layers", "planes", "stem") if k not in cfg]
    if missing:
        ap.error(f"--arch lacks {', '.join(missing)}")
    return cfg




def _from_checkpoint(model_name: str, path: str, make):
    sd = {k: v for k, v in load_checkpoint(path).items() if not k.endswith("num_batches_tracked")}
    if "fc.weight" not in sd:
        raise SystemExit(f"error: checkpoint {path!r} has no 'fc.weight': not a torchvision ResNet state dict")
    num_classes = sd["fc.weight"].shape[0]
    model = make(num_classes)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit(f"error: checkpoint {path!r} does not fit {model_name}: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    return model, num_classes


def build(model_name: str, weights: str, seed: int, arch: Optional[dict] = None):
    """Returns (torchvision ResNet in eval mode, metadata dict)."""
    import torchvision

    def make(num_classes: int):
        if arch is not None:
            return custom_resnet(arch["block"], arch["layers"], arch["planes"], arch["stem"], num_classes)
        return getattr(torchvision.models, model_name)(weights=None, num_classes=num_classes)

    enum = torchvision_enum(model_name) if model_name in RESNETS else None
    return build_model(model_name, weights, seed, enum, lambda: make(arch["num_classes"] if arch else 1000),
                       lambda path: _from_checkpoint(model_name, path, make))


# ---------------------------------------------------------------------------------------
# Conversion


def plan(model: nn.Module, size: int):
    """Geometry of every piece: (stem, [(layer name, block, main, down, graph key)], head hw)."""
    check_norm(model.bn1)
    conv = conv_geom(model.conv1, (size, size))
    pool = pool_geom(model.maxpool, conv["out"])
    hw = pool["out"]
    blocks = []
    for name, block in blocks_of(model):
        main = []
        h = hw
        for cn, bn in block_kind(block):
            check_norm(getattr(block, bn))
            if getattr(block, cn).bias is not None:
                raise SystemExit(f"error: {name}.{cn} has a bias: torchvision ResNets have none")
            g = conv_geom(getattr(block, cn), h)
            main.append((cn, bn, g))
            h = g["out"]
        down = None
        if block.downsample is not None:
            ds = block.downsample
            if len(ds) != 2 or not isinstance(ds[0], nn.Conv2d):
                raise SystemExit(f"error: {name}.downsample is not (conv, batch norm)")
            check_norm(ds[1])
            g = conv_geom(ds[0], hw)
            if g["out"] != h:
                raise SystemExit(f"error: {name}: shortcut and main path sizes differ")
            down = ("downsample.0", "downsample.1", g)
        blocks.append((name, block, main, down))
        hw = h
    return conv, pool, blocks, hw


def block_tensors(sd, prefix: str, main, down) -> Dict[str, torch.Tensor]:
    keys = []
    for cn, bn, _ in main + ([down] if down else []):
        keys += [cn + ".weight"] + [f"{bn}.{p}" for p in ("weight", "bias", "running_mean", "running_var")]
    return {k: sd[prefix + k] for k in keys}


STEM_KEYS = ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"]
HEAD_KEYS = ["fc.weight", "fc.bias"]
SW_SETTINGS = [
    {"use_bn": 1.0, "use_res1": 1.0, "use_res2": 1.0},
    {"use_bn": 1.0, "use_res1": 0.0, "use_res2": 0.0},
    {"use_bn": 1.0, "use_res1": 0.0, "use_res2": 1.0},
    {"use_bn": 1.0, "use_res1": 1.0, "use_res2": 0.0},
    {"use_bn": 0.0, "use_res1": 1.0, "use_res2": 1.0},
    {"use_bn": 0.0, "use_res1": 0.0, "use_res2": 0.0},
]




def _batch_norm_eps(model: nn.Module) -> float:
    eps = float(model.bn1.eps)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d) and float(m.eps) != eps:
            raise SystemExit("error: batch norms with different eps are not supported")
    return eps


def _graph_names(sd: Dict[str, torch.Tensor], blocks) -> List[str]:
    """Each block's graph: one per distinct block structure and geometry, named after its stage
    (layer1.down, layer2.block, ...)."""
    groups: Dict[tuple, str] = {}
    names = []
    for name, block, main, down in blocks:
        local = block_tensors(sd, name + ".", main, down)
        key = (type(block).__name__, tuple((k, tuple(v.shape)) for k, v in local.items()),
               tuple((c, b, tuple(sorted(g.items()))) for c, b, g in main),
               None if down is None else tuple(sorted(down[2].items())))
        if key not in groups:
            base = f"{name.split('.')[0]}.{'down' if down is not None else 'block'}"
            gname, i = base, 1
            while gname in groups.values():
                i += 1
                gname = f"{base}{i}"
            groups[key] = gname
        names.append(groups[key])
    return names


class _Net:
    """A ResNet being converted: the model, its float tensors, the geometry of every piece."""

    def __init__(self, model: nn.Module, size: int):
        self.model, self.size = model, size
        self.sd = {k: v.detach().float() for k, v in model.state_dict().items()
                   if not k.endswith("num_batches_tracked")}
        self.eps = _batch_norm_eps(model)
        self.conv, self.pool, self.blocks, self.head_hw = plan(model, size)
        self.graph_names = _graph_names(self.sd, self.blocks)
        self.stem_t = {k: self.sd[k] for k in STEM_KEYS}
        self.head_t = {k: self.sd[k] for k in HEAD_KEYS}
        self.num_classes, self.hidden = (int(n) for n in self.sd["fc.weight"].shape)

    def stem(self, t=None, indexed: bool = False):
        t = t or self.stem_t
        fwd, vjp = (StemFwdIndexed, StemVjpIndexed) if indexed else (StemFwd, StemVjp)
        return fwd(t, self.conv, self.pool, self.eps), vjp(t, self.conv, self.pool, self.eps)

    def block(self, i: int, rnd=None):
        name, _, main, down = self.blocks[i]
        t = block_tensors(self.sd, name + ".", main, down)
        t = rnd(t) if rnd else t
        return BlockFwd(t, main, down, self.eps), BlockVjp(t, main, down, self.eps)

    def block_inputs(self):
        """The input shape (channels, h, w) of every block, in order."""
        hw, chans = self.pool["out"], self.stem_t["conv1.weight"].shape[0]
        for name, _, main, down in self.blocks:
            yield (chans, *hw)
            hw, chans = main[-1][2]["out"], self.sd[f"{name}.{main[-1][0]}.weight"].shape[0]

    def init_spec(self, key: str, shape: Tuple[int, ...]) -> dict:
        return init_spec(key, shape, self.hidden)


def _check_blocks(net: _Net, tol: float, log: Log, check_layers: int) -> float:
    """The first check_layers blocks: the first block of each graph under every switch setting and
    against torchvision's block, the others with the shortcut on and off."""
    worst, seen, one = 0.0, set(), torch.tensor(1.0)
    for i, shape in enumerate(net.block_inputs()):
        if i >= check_layers:
            break
        name, block = net.blocks[i][:2]
        fwd, vjp = net.block(i)
        first = net.graph_names[i] not in seen
        seen.add(net.graph_names[i])
        x = torch.relu(torch.randn(1, *shape))
        worst = max(worst, check_switch_settings(
            name, fwd, vjp, SW_SETTINGS if first else SW_SETTINGS[:2], BLOCK_SWITCHES,
            lambda t, sw: ref_block(block, t, sw), lambda: x, tol, log))
        if first:
            with torch.no_grad():
                got, want = fwd(x, one, one, one)[0], block(x)
            check_same(f"{name} vs torchvision block", got, want, f"{name} differs from torchvision's block", tol,
                       log)
    return worst


def _check(net: _Net, title: str, untrained: bool, tol: float, log: Log, check_layers: int) -> None:
    """Every graph module against torch.autograd through torchvision's modules, the chain against
    torchvision's model, an untrained model's tensors against the recorded init distributions."""
    model, size, one = net.model, net.size, torch.tensor(1.0)
    log(f"checking {title} at {size}x{size} against torch.autograd, tolerance {tol:g} relative")
    torch.manual_seed(1234)
    sf, sv = net.stem()
    worst = 0.0
    for use_bn in (1.0, 0.0):
        worst = max(worst, check_piece(f"stem use_bn={use_bn:g}", sf, sv, (torch.tensor(use_bn),),
                                       (torch.tensor(use_bn),), lambda x: ref_stem(model, x, use_bn),
                                       torch.rand(1, 3, size, size), tol, log))
    with torch.random.fork_rng():  # the CPU backends' stem; its draws leave the random stream as it was
        fi, vi = net.stem(indexed=True)
        for use_bn in (1.0, 0.0):
            worst = max(worst, check_piece(f"stem (indexed) use_bn={use_bn:g}", fi, vi, (torch.tensor(use_bn),),
                                           (torch.tensor(use_bn),), lambda x: ref_stem(model, x, use_bn),
                                           torch.rand(1, 3, size, size), tol, log))
    worst = max(worst, _check_blocks(net, tol, log, check_layers))
    if check_layers >= len(net.blocks):
        worst = max(worst, check_piece("head", HeadFwd(net.head_t), HeadVjp(net.head_t, net.head_hw), (), (),
                                       lambda x: ref_head(model, x), torch.rand(1, net.hidden, *net.head_hw), tol,
                                       log))
    x = torch.rand(1, 3, size, size)
    with torch.no_grad():
        t = sf(x, one)[0]
        for i in range(len(net.blocks)):
            t = net.block(i)[0](t, one, one, one)[0]
        got, want = HeadFwd(net.head_t)(t), model(x)
    check_same("whole model logits", got, want, "chained logits differ from torchvision", tol, log)
    if untrained:
        check_init(net.sd, log, net.init_spec)
    log(f"check passed: worst relative error {worst:.2e}")


def _export_pair(out: str, gname: str, fwd, vjp, x, sw: list, sw_names: List[str], fwd_outs: List[str],
                 vjp_sw: bool) -> Dict[str, dict]:
    """Writes <gname>.fwd and <gname>.vjp (which takes dy, the switches if vjp_sw, and the saved outputs)."""
    with torch.no_grad():
        outs = fwd(x, *sw)
        outs = outs if isinstance(outs, tuple) else (outs,)
    vsw, vnames = (sw, sw_names) if vjp_sw else ([], [])
    return {
        f"{gname}.fwd": save_graph(out, f"{gname}.fwd", fwd, (x, *sw), ["x"] + sw_names, fwd_outs),
        f"{gname}.vjp": save_graph(out, f"{gname}.vjp", vjp, (torch.randn_like(outs[0]), *vsw, *outs[1:]),
                                   ["dy"] + vnames + fwd_outs[1:], ["dx"]),
    }


def _export(out: str, net: _Net) -> Dict[str, dict]:
    """The stem, one graph pair per distinct block, the head; returns the manifest's graph entries."""
    rnd = distinct_values(0, lambda shape, generator: torch.rand(shape, generator=generator) + 0.5)
    one = torch.tensor(1.0)
    x = torch.rand(1, 3, net.size, net.size)
    st = rnd(net.stem_t)
    graphs = _export_pair(out, "stem", *net.stem(st), x, [one], STEM_SWITCHES, ["y", "s_a"], True)
    graphs.update(_export_pair(out, "stem_indexed", *net.stem(st, indexed=True), x, [one], STEM_SWITCHES,
                               ["y", "s_a", "s_i"], True))
    for i, shape in enumerate(net.block_inputs()):
        gname = net.graph_names[i]
        if f"{gname}.fwd" not in graphs:
            outs = ["y", "s_y"] + [f"s_a{j + 1}" for j in range(len(net.blocks[i][2]) - 1)]
            graphs.update(_export_pair(out, gname, *net.block(i, rnd), torch.relu(torch.randn(1, *shape)),
                                       [one] * 3, BLOCK_SWITCHES, outs, True))
    et = rnd(net.head_t)
    graphs.update(_export_pair(out, "head", HeadFwd(et), HeadVjp(et, net.head_hw),
                               torch.rand(1, net.hidden, *net.head_hw), [], [], ["y"], False))
    return graphs


def convert_resnet(model, meta: dict, model_name: str, out: str, check: bool = True, write_weights: bool = True,
                   weight_set: Optional[str] = None, log: Callable[[str], None] = print, tol: float = 1e-5,
                   check_layers: int = 10**9, image_size: int = 224) -> dict:
    """Writes out/manifest.json, out/graphs/*.onnx and out/<weight_set>.safetensors for a torchvision
    ResNet; returns the manifest."""
    torch.set_grad_enabled(True)
    model.eval()
    net = _Net(model, image_size)
    if check:
        _check(net, f"{model_name} ({meta['weights']})", meta["weights"] == "untrained", tol, log, check_layers)
    os.makedirs(os.path.join(out, "graphs"), exist_ok=True)
    graphs = _export(out, net)
    layers = [layer_entry("stem", "stem", "", STEM_SWITCHES, cpu_graph="stem_indexed")]
    layers += [layer_entry(name, g, name + ".", BLOCK_SWITCHES) for (name, *_), g in zip(net.blocks, net.graph_names)]
    layers.append(layer_entry("logits", "head", "", []))
    family = {"hidden_dim": net.hidden, "block": "bottleneck" if len(net.blocks[0][2]) == 3 else "basic",
              "stages": [len(getattr(model, f"layer{s}")) for s in range(1, 5)], "batch_norm_eps": net.eps,
              "switch_meaning": SWITCH_MEANING}
    manifest = build_manifest(
        name=model_name, architecture="resnet", image_size=image_size, num_layers=len(net.blocks),
        num_classes=net.num_classes, family=family, patch_filters="conv1.weight", meta=meta, graphs=graphs,
        layers=layers, tensors=tensor_table(net.sd, net.init_spec),
        weight_sets=write_weight_set(out, net.sd, model_name, meta, weight_set) if write_weights else {},
        runtime=FAMILY.runtime_fields)
    write_manifest(out, manifest)
    return manifest


# ---------------------------------------------------------------------------------------
# The family (registry.py collects it)


def _prepare(ap, a):
    arch = custom_arch(ap, a, "resnet_custom", parse_arch, "resnet_custom", "resnet_custom")
    need_out(ap, a)
    size = a.image_size if a.image_size is not None else 224
    if size <= 0:
        ap.error(f"--image-size {size}: expected a positive integer")
    model, meta = build(a.model, a.weights, a.seed, arch)
    return model, meta, size, convert_resnet, {"image_size": size}


def _listing():
    lines = ["ResNets (torchvision names and init, ImageNet mean/std; one graph per residual block):"]
    lines += [f"  {k:<14} {v}" for k, v in DESCRIPTIONS.items()]
    return lines + [switch_line(SWITCH_MEANING)]


def _arch_text(m: dict) -> str:
    t = m["tensors"]
    planes = [t[f"layer{i + 1}.0.conv1.weight"]["shape"][0] for i in range(len(m["stages"]))]
    return (f"layers={':'.join(map(str, m['stages']))},planes={':'.join(map(str, planes))},"
            f"stem={t['conv1.weight']['shape'][0]},classes={m['num_classes']},block={m['block']}")


# One block at a time along the stages (they change the shape); one wasm thread: onnxruntime-web 1.30
# with threads can hang in full-size ResNet graphs with external data (one thread never hung); grid
# columns named by block (layer2.3).
FAMILY = register(Family(name="resnet", architectures=("resnet",), presets=tuple(RESNETS),
                         custom=("resnet_custom",), torchvision=tuple(RESNETS), prepare=_prepare,
                         listing=_listing, arch_text=_arch_text, block_chain="stage", wasm_threads=1,
                         layer_labels="name",
                         part_names={"resnet": {"bn": "batch norms", "res1": "shortcut", "res2": "shortcut"}}))
