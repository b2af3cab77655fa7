"""Pieces shared by the fixture builders (make_fixtures.py, make_resnet_fixtures.py): a model
with one part's tensors taken from a second weight set, and a gradient case (an objective's
value and torch.autograd input gradient)."""

from __future__ import annotations

import copy
from typing import Callable, Dict, Optional, Tuple

import torch


def swapped(model: torch.nn.Module, other: torch.nn.Module, prefix: str) -> torch.nn.Module:
    """A copy of model whose tensor `prefix` (or tensors under `prefix.`) come from other."""
    out = copy.deepcopy(model)
    sd = out.state_dict()
    with torch.no_grad():
        for k, v in other.state_dict().items():
            if k == prefix or k.startswith(prefix + "."):
                sd[k].copy_(v)
    return out


def gradient_case(case: dict, forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, loss: str,
                  key: str, gen: torch.Generator, tensors: Dict[str, torch.Tensor]
                  ) -> Tuple[dict, torch.Tensor, Optional[torch.Tensor]]:
    """Adds loss, grad (, index and constant | target) and value to case: the objective on forward(x)
    — "logit": |5 − logit 3|; "l2" / "l1": Σ(out − T)² / Σ|out − T| for a random target T scaled
    to the output — and stores the target and the input gradient in tensors under key. Returns
    (case, output, output − target or None)."""
    xr = x.clone().requires_grad_(True)
    out = forward(xr)
    case.update(loss=loss, grad=key)
    diff = None
    if loss == "logit":
        case.update(index=3, constant=5.0)
        value = (5.0 - out[0, 3]).abs()
    else:
        target = torch.randn(out.shape, generator=gen) * out.detach().std()
        tensors[key + "/target"] = target
        case["target"] = key + "/target"
        diff = out - target
        value = (diff * diff).sum() if loss == "l2" else diff.abs().sum()
    (g,) = torch.autograd.grad(value, xr)
    tensors[key] = g
    case["value"] = value.item()
    return case, out, diff
