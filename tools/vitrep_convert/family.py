"""An architecture family: one object per converter module (vit.py, mixer.py, resnet.py), registered
when its module is imported (timm's register-a-model idea). registry.py imports the modules and
reads the registered families; nothing else lists them.

A family says which model names it converts (presets, and the custom names built from --arch),
how the command line builds a model of it (`prepare`), how `--list` describes it, and what the
TypeScript runtime must know about it: the manifest's `runtime` object (see `runtime_fields`;
src/model/family.ts reads it), so the runtime has no branch on a family's name.

The runtime fields:
- block_chain: "any" (blocks keep the token shape, any increasing list chains) or "stage" (a block
  takes the output of the stem or of a block of its own stage: names `stage.i`, as a ResNet's);
- wasm_threads: threads for the wasm backend when none is asked for, or None (the default);
- layer_labels: "number" (a grid column `layer 7`) or "name" (`layer2.3 (7)`);
- convert_args: the converter arguments that rebuild the architecture, before --weights;
- torchvision_weights: whether torchvision names (and downloads) the model's weight sets;
- block_word: what labels call a block ("encoder 7", "block 7");
- part_names: what each removable part of a block is (its switch's name without `use_`), for the
  explorer's labels, e.g. {"attn": "token mixing", "res1": "residual 1"}."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

RUNTIME_KEYS = ("block_chain", "wasm_threads", "layer_labels", "convert_args", "torchvision_weights", "block_word",
                "part_names")

# what the parts of a pre-norm transformer-style block are called (a family overrides some)
TOKEN_PARTS = {"ln1": "layer norm 1", "attn": "attention", "res1": "residual 1", "ln2": "layer norm 2",
               "mlp": "MLP", "res2": "residual 2"}


@dataclass(frozen=True)
class Family:
    """One architecture family of the converter.

    name: the family's name (e.g. "resnet"); architectures: the manifest `architecture` values it
    writes; presets: model names with a fixed architecture; custom: model names built from --arch;
    torchvision: the presets whose weights torchvision names; prepare(ap, args) -> (model, meta,
    image_size, convert, extra convert kwargs); listing() -> the `--list` lines; arch_text(manifest)
    -> the --arch that rebuilds a custom model; block_chain, wasm_threads, layer_labels: see the
    module doc; block_words and part_names: per architecture the family writes, its block_word and
    part_names (default "block" and TOKEN_PARTS)."""

    name: str
    architectures: Tuple[str, ...]
    presets: Tuple[str, ...]
    custom: Tuple[str, ...]
    prepare: Callable
    listing: Callable[[], List[str]]
    arch_text: Callable[[dict], str]
    torchvision: Tuple[str, ...] = ()
    block_chain: str = "any"
    wasm_threads: Optional[int] = None
    layer_labels: str = "number"
    arch_help: str = field(default="")
    block_words: Dict[str, str] = field(default_factory=dict)
    part_names: Dict[str, Dict[str, str]] = field(default_factory=dict)

    @property
    def models(self) -> Tuple[str, ...]:
        """Every model name of the family: presets, then custom names."""
        return self.presets + self.custom

    def runtime_fields(self, manifest: dict) -> dict:
        """The manifest's `runtime` object for a manifest of this family (all but `runtime` built)."""
        if manifest["architecture"] not in self.architectures:
            raise ValueError(f"architecture {manifest['architecture']!r}: the {self.name} family writes "
                             f"{', '.join(self.architectures)}")
        name = manifest["name"]
        args = [name]
        if name in self.custom:
            args += ["--arch", self.arch_text(manifest), "--image-size", str(manifest["image_size"]),
                     "--mean", ",".join(_num(v) for v in manifest["input"]["mean"]),
                     "--std", ",".join(_num(v) for v in manifest["input"]["std"])]
        return {"block_chain": self.block_chain, "wasm_threads": self.wasm_threads,
                "layer_labels": self.layer_labels, "convert_args": args,
                "torchvision_weights": name in self.torchvision,
                "block_word": self.block_words.get(manifest["architecture"], "block"),
                "part_names": self.part_names.get(manifest["architecture"], TOKEN_PARTS)}


def _num(v: float) -> str:
    """A number as JavaScript prints it (1.0 -> "1", 0.485 -> "0.485")."""
    return str(int(v)) if float(v).is_integer() else repr(float(v))


_REGISTRY: Dict[str, Family] = {}


def register(fam: Family) -> Family:
    """Registers a family (each converter module calls this once, at import); returns it."""
    taken = [m for f in _REGISTRY.values() if f.name != fam.name for m in f.models if m in fam.models]
    if taken:
        raise ValueError(f"family {fam.name!r}: model names {taken} belong to another family")
    _REGISTRY[fam.name] = fam
    return fam


def registered() -> Dict[str, Family]:
    """The registered families by name, in registration order."""
    return dict(_REGISTRY)


# ---------------------------------------------------------------------------------------
# Helpers the families' `prepare` functions share


def need_out(ap, a) -> None:
    """--out is required for a conversion."""
    if not a.out:
        ap.error("--out DIR is required")


def check_image_size(ap, a, patch: Optional[int]) -> None:
    """--image-size: a positive multiple of the patch size."""
    if a.image_size is not None and (a.image_size <= 0 or (patch and a.image_size % patch)):
        ap.error(f"--image-size {a.image_size}: expected a positive multiple of the patch size {patch}")


def custom_arch(ap, a, custom: str, parse, label: str, others: str) -> Optional[dict]:
    """The parsed --arch of the custom architecture `custom` (label: how errors name it), or None
    for the presets, which take no --arch (others: the names that do)."""
    if a.model != custom:
        if a.arch:
            ap.error(f"--arch is for {others}, not {a.model}")
        return None
    arch = parse(ap, a.arch)
    if a.weights != "untrained" and not os.path.exists(a.weights):
        ap.error(f"{label} takes --weights untrained or a checkpoint file")
    return arch


def switch_line(meaning: dict) -> str:
    """The `--list` line of a family's switches."""
    return "  switches: " + "; ".join(f"{s} = {m}" for s, m in meaning.items())
