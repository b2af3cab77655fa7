"""The manifest: the one contract between this converter and the TypeScript runtime
(src/model parses it). Every family's manifest is made by build_manifest and written by
write_manifest.

Fields common to every family, in this order: format ("vitrep-model/1"), name, architecture
(one of the registered families' architectures: "vit" | "mixer" | "ffvit" | "resnet"), image_size,
num_layers (the blocks between the input processing and the head), num_classes, then the family's own
fields, then patch_filters (the stem convolution's weight tensor), input {shape, mean, std, range,
layout}, opset, batch_axis, runtime {block_chain, wasm_threads, layer_labels, convert_args,
torchvision_weights} (what the runtime must know about the family: family.py), converter {torch,
script}, external_data, graphs {name: {file, sha256, inputs, outputs, params, unused_params}}, layers
[{name, graph, prefix, switches}], tensors {key: {shape, dtype, init}}, weight_sets {name: {file,
source, sha256: {key: hex}}}, categories (class names or null).

The families' own fields (tests/convert_test.ts checks every committed manifest for exactly these):
- vit: patch_size, hidden_dim, num_heads, mlp_dim, seq_length, layer_norm_eps
- mixer, ffvit: patch_size, hidden_dim, tokens_mlp_dim, channels_mlp_dim, block_order, class_token,
  seq_length, layer_norm_eps, switch_meaning
- resnet: hidden_dim (the head's input width), block, stages, batch_norm_eps, switch_meaning"""

from __future__ import annotations

import json
import os
from typing import Callable, Dict, List, Optional

import torch

from .export import EXTERNAL, OPSET

FORMAT = "vitrep-model/1"
SCRIPT = "tools/convert.py"


def layer_entry(name: str, graph: str, prefix: str, switches: List[str], cpu_graph: Optional[str] = None) -> dict:
    """One position of the chain: the graph it runs, the prefix of its tensors, its switches, and a
    graph the CPU backends run instead (same inputs and result, ops GPUs lack), if any."""
    entry = {"name": name, "graph": graph, "prefix": prefix, "switches": switches}
    if cpu_graph:
        entry["cpu_graph"] = cpu_graph
    return entry


def build_manifest(*, name: str, architecture: str, image_size: int, num_layers: int, num_classes: int,
                   family: Dict[str, object], patch_filters: str, meta: dict, graphs: Dict[str, dict],
                   layers: List[dict], tensors: Dict[str, dict], weight_sets: Dict[str, dict],
                   runtime: Callable[[dict], dict], batch_axis: bool = False) -> dict:
    """The manifest of a converted model. family: the architecture's own fields (e.g. patch_size,
    hidden_dim, num_heads for a ViT; block, stages for a ResNet), in the order they are written.
    meta: weights name, input mean/std and class names (categories). batch_axis: every graph's first
    axis (but the switches') is a dynamic batch axis, so a chain runs B images at once. runtime: the
    family's Family.runtime_fields, called with the manifest built so far (the `runtime` field)."""
    clash = [k for k in family if k in ("format", "name", "architecture", "image_size", "num_layers", "num_classes",
                                        "patch_filters", "input", "graphs", "layers", "tensors", "batch_axis",
                                        "runtime")]
    if clash:
        raise ValueError(f"family fields {clash} would overwrite common manifest fields")
    if patch_filters not in tensors:
        raise ValueError(f"patch_filters {patch_filters!r} is not a tensor of {name}")
    manifest = {
        "format": FORMAT,
        "name": name,
        "architecture": architecture,
        "image_size": int(image_size),
        "num_layers": int(num_layers),
        "num_classes": int(num_classes),
        **family,
        "patch_filters": patch_filters,
        "input": {"shape": [1, 3, image_size, image_size], "mean": meta["mean"], "std": meta["std"],
                  "range": [0, 1], "layout": "NCHW"},
        "opset": OPSET,
        "batch_axis": bool(batch_axis),
        "runtime": None,
        "converter": {"torch": torch.__version__, "script": SCRIPT},
        "external_data": EXTERNAL,
        "graphs": graphs,
        "layers": layers,
        "tensors": tensors,
        "weight_sets": weight_sets,
        "categories": meta["categories"],
    }
    manifest["runtime"] = runtime(manifest)
    return manifest


def dump_json(obj, indent: int = 0) -> str:
    """JSON with one key per line but short lists (shapes, params) kept on one line."""
    pad = " " * (indent + 1)
    if isinstance(obj, dict) and obj:
        items = [f"{pad}{json.dumps(k)}: {dump_json(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(obj, list) and obj and isinstance(obj[0], dict):
        items = [pad + json.dumps(v, separators=(", ", ": ")) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
    return json.dumps(obj, separators=(", ", ": "))


def _graph_hashes(manifest: dict) -> Dict[str, Optional[str]]:
    return {k: g.get("sha256") for k, g in manifest.get("graphs", {}).items()}


def same_graphs(prev: dict, manifest: dict) -> bool:
    """Whether two manifests describe the same graphs over the same tensors, so that a weight set
    of one fits the other."""
    return all(prev.get(k) == manifest[k] for k in ("architecture", "image_size", "layers", "tensors")) and \
        _graph_hashes(prev) == _graph_hashes(manifest)


def write_manifest(out: str, manifest: dict) -> None:
    """Writes out/manifest.json (atomically), keeping the weight sets of an earlier manifest there
    when it describes the same graphs (see same_graphs)."""
    path = os.path.join(out, "manifest.json")
    if os.path.exists(path):
        with open(path) as f:
            prev = json.load(f)
        if same_graphs(prev, manifest):
            for k, v in prev.get("weight_sets", {}).items():
                manifest["weight_sets"].setdefault(k, v)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(dump_json(manifest))
        f.write("\n")
    os.replace(tmp, path)
