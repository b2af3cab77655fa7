"""The families this converter knows, as their modules register them (family.py), and the model
names each converts (`--list` describes them). A new family is a module that calls
family.register; MODULES is the one place that names it, so that importing the registry imports it."""

from __future__ import annotations

import importlib
from typing import Dict, List, Optional

from .family import Family, registered

# the family modules, in the order --list and the model names show them
MODULES = ("vit", "mixer", "resnet")
for _m in MODULES:
    importlib.import_module(f".{_m}", __package__)

FAMILIES: Dict[str, Family] = registered()

# name -> family name ("vit", "mixer" for MLP-Mixers and FF-only ViTs, "resnet")
MODELS: Dict[str, str] = {m: f.name for f in FAMILIES.values() for m in f.models}


def family(model_name: Optional[str]) -> Optional[Family]:
    """The family of a model name, or None for unknown names."""
    name = MODELS.get(model_name or "")
    return FAMILIES[name] if name else None


def by_architecture(architecture: str) -> Family:
    """The family that writes manifests of this `architecture`."""
    for f in FAMILIES.values():
        if architecture in f.architectures:
            return f
    known = [a for f in FAMILIES.values() for a in f.architectures]
    raise ValueError(f"architecture {architecture!r}: expected one of {', '.join(known)}")


def listing() -> List[str]:
    """Every model name with a one-line description, by family, with what each switch removes."""
    return [line for f in FAMILIES.values() for line in f.listing()]
