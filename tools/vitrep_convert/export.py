"""ONNX export: one graph file per module, its parameters moved to external data (location
`__weights__`, 64-byte aligned offsets listed in the manifest) so the runtime can pack any
weight set into it, and the manifest's entry for the graph (with the file's sha256)."""

from __future__ import annotations

import hashlib
import inspect
import io
import os
from typing import Callable, Dict, List

import torch
import torch.nn as nn

OPSET = 17
EXTERNAL = "__weights__"
ALIGN = 64
PARAM_LEAVES = ("weight", "bias", "running_mean", "running_var")


def export_graph(module: nn.Module, args: tuple, inputs: List[str], outputs: List[str], batch: bool = False):
    """torch.onnx.export of module at args (opset 17, no constant folding) as an onnx ModelProto. With
    batch, the first axis of every input and output but the switches (`use_*` scalars) is the dynamic
    batch axis "B"."""
    import onnx

    buf = io.BytesIO()
    kwargs = dict(input_names=inputs, output_names=outputs, opset_version=OPSET, do_constant_folding=False)
    if batch:
        kwargs["dynamic_axes"] = {n: {0: "B"} for n in inputs + outputs if not n.startswith("use_")}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    with torch.no_grad():
        torch.onnx.export(module, args, buf, **kwargs)
    return onnx.load_from_string(buf.getvalue())


def externalize(model, names: List[str]) -> List[dict]:
    """Moves the named initializers to external data; returns their layout."""
    from onnx import TensorProto, numpy_helper

    layout, offset = [], 0
    for init in model.graph.initializer:
        if init.name not in names:
            continue
        arr = numpy_helper.to_array(init)
        if arr.dtype.name != "float32":
            raise RuntimeError(f"parameter {init.name} has dtype {arr.dtype}, expected float32")
        nbytes = arr.size * 4
        layout.append({"name": init.name, "shape": list(arr.shape), "offset": offset, "length": nbytes})
        init.ClearField("raw_data")
        init.ClearField("float_data")
        init.data_location = TensorProto.EXTERNAL
        del init.external_data[:]
        for k, v in (("location", EXTERNAL), ("offset", str(offset)), ("length", str(nbytes))):
            e = init.external_data.add()
            e.key, e.value = k, v
        offset += (nbytes + ALIGN - 1) // ALIGN * ALIGN
    return layout


def save_graph(out: str, gname: str, module: nn.Module, args: tuple, inputs: List[str],
               outputs: List[str], batch: bool = False) -> dict:
    """Exports module (a layers.Params) as out/graphs/<gname>.onnx with its parameters as external
    data; returns the manifest's graph entry: file, sha256, inputs, outputs, params, unused_params."""
    g = export_graph(module, args, inputs, outputs, batch)
    params = list(module._names)
    present = {i.name for i in g.graph.initializer}
    layout = externalize(g, [n for n in params if n in present])
    # parameters the graph needs but torch renamed would show up as unknown initializers
    stray = [i.name for i in g.graph.initializer if i.data_location != 1 and i.name.split(".")[-1] in PARAM_LEAVES]
    if stray:
        raise RuntimeError(f"{gname}: exporter renamed parameters {stray}")
    got_in = [i.name for i in g.graph.input]
    if got_in != inputs:
        raise RuntimeError(f"{gname}: graph inputs {got_in}, expected {inputs}")
    fname = f"graphs/{gname}.onnx"
    data = g.SerializeToString()
    tmp = os.path.join(out, fname + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, os.path.join(out, fname))
    return {"file": fname, "sha256": hashlib.sha256(data).hexdigest(), "inputs": inputs, "outputs": outputs,
            "params": layout, "unused_params": [n for n in params if n not in present]}


def export_modules(out: str, mods: Dict[str, nn.Module], specs: Dict[str, tuple],
                   batch: bool = False) -> Dict[str, dict]:
    """save_graph for each graph name in specs: (example args, input names, output names)."""
    return {gname: save_graph(out, gname, mods[gname], args, ins, outs, batch)
            for gname, (args, ins, outs) in specs.items()}


def distinct_values(seed: int, draw: Callable[..., torch.Tensor]):
    """A function mapping a tensor dict to random tensors of the same shapes. Graphs are exported from
    modules holding random, pairwise-distinct values: the exporter merges identical initializers
    (e.g. all-zero biases, all-one batch-norm weights), which would break per-tensor weight swapping.
    The values never reach the graph files: they become external data."""
    gen = torch.Generator().manual_seed(seed)
    return lambda t: {k: draw(v.shape, generator=gen) for k, v in t.items()}
