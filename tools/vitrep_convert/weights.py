"""Weights in and out: state-dict checkpoints (.pth, .safetensors), torchvision's named weights,
the safetensors weight sets the runtime loads, and the manifest's per-tensor table."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import struct
import urllib.parse
from typing import Callable, Dict, List, Optional, Tuple

import torch

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
HALF = [0.5, 0.5, 0.5]

InitSpec = Callable[[str, Tuple[int, ...]], dict]


def read_safetensors(path: str) -> Dict[str, torch.Tensor]:
    """A safetensors file's float tensors as float32 (batch norms' int64 num_batches_tracked,
    which eval mode never reads, is left out)."""
    import numpy as np

    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    out = {}
    types = {"F32": np.float32, "F16": np.float16, "F64": np.float64}
    for name, info in header.items():
        if name == "__metadata__" or name.endswith("num_batches_tracked"):
            continue
        a, b = info["data_offsets"]
        if info["dtype"] not in types:
            raise SystemExit(f"error: tensor {name!r} in {path!r} has dtype {info['dtype']!r}: expected F32, F16 "
                             "or F64")
        arr = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=types[info["dtype"]]).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.astype(np.float32))
    return out


def load_checkpoint(path: str) -> Dict[str, torch.Tensor]:
    """A state dict from a .safetensors or a torch.save file (a training checkpoint's 'model' entry)."""
    if path.endswith(".safetensors"):
        return read_safetensors(path)
    kwargs = {"map_location": "cpu"}
    if "weights_only" in inspect.signature(torch.load).parameters:
        kwargs["weights_only"] = True
    try:
        sd = torch.load(path, **kwargs)
    except Exception:  # noqa: BLE001 - e.g. a training checkpoint pickling its argparse options (DeiT)
        if not kwargs.get("weights_only"):
            raise
        raise SystemExit(
            f"error: checkpoint {path!r} holds more than tensors (e.g. a training run's options), so it is not "
            "loaded (unpickling it would run code). If you trust it, save its state dict alone, e.g.\n  python3 -c "
            "\"import torch; c = torch.load('CKPT.pth', map_location='cpu'); torch.save(c.get('model', c), "
            "'STATE_DICT.pth')\"\nand convert that file") from None
    if isinstance(sd, dict) and "model" in sd and isinstance(sd["model"], dict):
        sd = sd["model"]
    if not isinstance(sd, dict):
        raise SystemExit(f"error: checkpoint {path!r} is not a state dict: expected a dict of tensors")
    return sd


def checkpoint_name(path: str) -> str:
    """The weight-set name of a checkpoint file: its base name without the extension."""
    return os.path.splitext(os.path.basename(path))[0]


def new_meta(weights: str, mean: List[float] = IMAGENET_MEAN, std: List[float] = IMAGENET_STD) -> dict:
    """The metadata a family's build() fills in: weights name, input mean/std, class names."""
    return {"weights": weights, "mean": mean, "std": std, "categories": None}


def torchvision_enum(model_name: str):
    """torchvision's weights enum for a model name, or None for names it does not know."""
    import torchvision

    try:
        return torchvision.models.get_model_weights(model_name)
    except (ValueError, KeyError):
        return None


def enum_categories(enum) -> Optional[List[str]]:
    """The class names of a torchvision weights enum (its first entry's), or None without one."""
    return None if enum is None else list(list(enum)[0].meta["categories"])


class DownloadError(Exception):
    """torchvision could not download named weights (no network): the CLI turns it into a message
    naming the file to fetch and the command that converts it (it knows --out)."""

    def __init__(self, model_name: str, weights: str, url: str, reason: str):
        super().__init__(f"cannot download {url}: {reason}")
        self.model_name, self.weights, self.url, self.reason = model_name, weights, url, reason

    def message(self, out: str) -> str:
        """The error text for a conversion into out."""
        import torch.hub

        fname = os.path.basename(urllib.parse.urlparse(self.url).path)
        cache = os.path.join(torch.hub.get_dir(), "checkpoints")
        return (f"error: --weights {self.weights}: torchvision could not download {self.url} ({self.reason}): "
                "named weights need a network. Either\n"
                f"  - run this command on a machine with internet, then copy {out} here (or only its manifest.json "
                f"and {self.weights}.safetensors),\n"
                f"  - or copy {fname}, downloaded elsewhere (torchvision keeps it in ~/.cache/torch/hub/checkpoints/), "
                f"into {cache}/ and run this command again,\n"
                f"  - or convert that file: python3 tools/convert.py {self.model_name} --weights /path/to/{fname} "
                f"--name {self.weights} --out {out}")


def file_sha256(path: str) -> str:
    """sha256 of a file's bytes (read in 16 MiB pieces)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for piece in iter(lambda: f.read(2 ** 24), b""):
            h.update(piece)
    return h.hexdigest()


def torchvision_file(path: str, enum):
    """The entry of torchvision's weights enum that a checkpoint file is the download of (the same
    file name, e.g. vit_b_32-d86f8d99.pth, whose hash part is the start of the file's sha256, as
    torch.hub checks it), or None."""
    base = os.path.basename(path)
    for w in list(enum or []):
        if os.path.basename(urllib.parse.urlparse(w.url).path) != base:
            continue
        m = re.search(r"-([a-f0-9]{8,})\.", base)
        if m and file_sha256(path).startswith(m.group(1)):
            return w
    return None


def _fill_meta(w, meta: dict) -> None:
    """meta's weights name, mean, std and categories from a torchvision weights entry."""
    t = w.transforms()
    meta["weights"] = w.name
    meta["mean"], meta["std"] = list(t.mean), list(t.std)
    meta["categories"] = list(w.meta["categories"])


def named_weights(model_name: str, weights: str, enum, meta: dict):
    """torchvision's model with its named weights (e.g. IMAGENET1K_V1), downloaded by torchvision
    (or taken from its cache); fills meta's mean, std and categories from the weights' own
    transforms. Raises DownloadError where the download fails."""
    import torchvision

    if enum is None:
        raise SystemExit(f"error: --weights {weights!r}: custom configurations take 'untrained' or a checkpoint file")
    names = [w.name for w in enum]
    if weights not in names:
        raise SystemExit(f"error: unknown --weights {weights!r} for {model_name}: expected untrained, a "
                         f"checkpoint file, or one of {', '.join(names)}")
    w = enum[weights]
    try:
        model = getattr(torchvision.models, model_name)(weights=w)
    except OSError as err:  # urllib's URLError, a timeout, a refused connection
        raise DownloadError(model_name, weights, w.url, str(getattr(err, "reason", err))) from None
    _fill_meta(w, meta)
    return model


def build_model(model_name: str, weights: str, seed: int, enum, untrained: Callable[[], torch.nn.Module],
                from_checkpoint: Callable[[str], Tuple[torch.nn.Module, int]]):
    """(model in eval mode, metadata dict) for --weights: 'untrained' (untrained() after seeding torch
    with seed), a checkpoint file (from_checkpoint(path) -> (model, num_classes); named after the file,
    or after torchvision's weights when it is their download, e.g. vit_b_32-d86f8d99.pth ->
    IMAGENET1K_V1), or the name of torchvision's weights for model_name (enum: its weights enum, None
    where it has none)."""
    meta = new_meta(weights)
    if weights == "untrained":
        torch.manual_seed(seed)
        model = untrained()
        meta["seed"] = seed
        meta["categories"] = enum_categories(enum)
    elif os.path.exists(weights):
        model, num_classes = from_checkpoint(weights)
        meta["weights"] = checkpoint_name(weights)
        meta["categories"] = enum_categories(enum) if num_classes == 1000 else None
        known = torchvision_file(weights, enum)
        if known is not None:  # torchvision's own download: named (and normalized) as torchvision names it
            _fill_meta(known, meta)
    else:
        model = named_weights(model_name, weights, enum, meta)
    model.eval()
    return model, meta


def sha256(t: torch.Tensor) -> str:
    """sha256 of a tensor's float32 bytes."""
    return hashlib.sha256(t.detach().contiguous().float().numpy().tobytes()).hexdigest()


def write_safetensors(path: str, tensors: Dict[str, torch.Tensor], metadata: Dict[str, str]) -> None:
    """Writes float32 tensors as a safetensors file (atomically: a .tmp file renamed)."""
    header: Dict[str, object] = {"__metadata__": metadata}
    offset, blobs = 0, []
    for name, t in tensors.items():
        data = t.detach().contiguous().float().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def write_weight_set(out: str, sd: Dict[str, torch.Tensor], model_name: str, meta: dict,
                     weight_set: Optional[str]) -> dict:
    """Writes out/<weight_set>.safetensors; returns the manifest's weight_sets entry (with the
    sha256 of every tensor)."""
    weight_set = weight_set or meta["weights"]
    fname = f"{weight_set}.safetensors"
    write_safetensors(os.path.join(out, fname), sd, {"model": model_name, "weights": weight_set})
    return {weight_set: {"file": fname, "source": meta["weights"], "sha256": {k: sha256(v) for k, v in sd.items()}}}


def tensor_table(sd: Dict[str, torch.Tensor], init_spec: InitSpec) -> Dict[str, dict]:
    """The manifest's `tensors`: shape, dtype and untrained init distribution of every tensor."""
    return {k: {"shape": list(v.shape), "dtype": "float32", "init": init_spec(k, tuple(v.shape))}
            for k, v in sd.items()}
