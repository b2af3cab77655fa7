"""Verification against PyTorch: each (forward, VJP) graph module pair against torch.autograd
through a reference function, whole chains against the reference model, and the recorded init
distributions against an untrained model's tensors."""

from __future__ import annotations

import math
from typing import Callable, Dict, List, Sequence, Tuple

import torch

from .weights import InitSpec

Log = Callable[[str], None]


def rel_err(a: torch.Tensor, b: torch.Tensor) -> Tuple[float, float]:
    """(max |a - b|, max |a - b| / max |b|)."""
    abs_err = (a - b).abs().max().item()
    scale = b.abs().max().item()
    return abs_err, abs_err / scale if scale > 0 else abs_err


def check_piece(name, fwd_graph, vjp_graph, fwd_args, vjp_extra, ref_fn, x, tol, log: Log) -> float:
    """Compares a (forward, vjp) module pair with autograd through ref_fn at x; returns the worst
    relative error and fails above tol."""
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


def check_switch_settings(label: str, fwd, vjp, settings: Sequence[Dict[str, float]], names: List[str],
                          ref: Callable[[torch.Tensor, Dict[str, float]], torch.Tensor],
                          make_x: Callable[[], torch.Tensor], tol: float, log: Log) -> float:
    """check_piece under each switch setting (switches passed to forward and VJP alike), labelled
    `<label> off=<switches off>`; make_x draws each setting's input."""
    worst = 0.0
    for sw in settings:
        st = [torch.tensor(sw[s]) for s in names]
        off = ",".join(s[4:] for s in names if not sw[s]) or "none"
        worst = max(worst, check_piece(f"{label} off={off}", fwd, vjp, st, st, lambda x: ref(x, sw), make_x(),
                                       tol, log))
    return worst


def check_same(label: str, got: torch.Tensor, want: torch.Tensor, what: str, tol: float, log: Log) -> None:
    """A forward output against the reference module's own (fails above tol)."""
    a, r = rel_err(got, want)
    log(f"  {label:<28} forward max abs {a:.2e} rel {r:.2e}")
    if r > tol:
        raise SystemExit(f"error: {what} by {r:.2e}")


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


def check_init(sd: Dict[str, torch.Tensor], log: Log, init_spec: InitSpec) -> None:
    """Checks that init_spec describes the model's initialisation (mean/std within sampling error)."""
    for k, v in sd.items():
        spec = init_spec(k, tuple(v.shape))
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


def random_head(head_t: Dict[str, torch.Tensor], weight: str, bias: str) -> Dict[str, torch.Tensor]:
    """The head's tensors with a random linear layer (to check the graph math where the model's
    head is initialised to zero)."""
    ht = dict(head_t)
    ht[weight] = torch.randn_like(ht[weight]) * 0.02
    ht[bias] = torch.randn_like(ht[bias]) * 0.02
    return ht
