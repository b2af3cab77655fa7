#!/usr/bin/env python3
"""PyTorch side of `deno task bench`: the same step as vitrep's inputGradient —
forward through the model's input processing and blocks 1..L, an L2 feature
loss, and the gradient with respect to the image — timed on the CPU, for the
untrained model a weights/ folder describes (ViT: torchvision; ResNet:
torchvision, L counted in bottlenecks; MLP-Mixer and FF-only ViT: the
converter's reference modules). Prints one JSON line with the median times,
the FLOPs of each step, the BLAS build and kernel in use, and the measured
single-precision GEMM peak (1024³) at the same thread count.

For a fair baseline run it with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset
(`deno task bench` does): on machines that set them, OpenBLAS falls back to an
older kernel and PyTorch runs 2-5x slower.

    python3 tools/bench_torch.py --model vit_b_32 --layers 1,4,12 --repeats 9 --threads 2 [--batch 1,8]
    python3 tools/bench_torch.py --model resnet50 --layers 3,16
    python3 tools/bench_torch.py --model mixer_p16_d1024 --layers 1,8
    python3 tools/bench_torch.py --model vit_b_32 --layers 12 --batch 1,8 --device cuda --dtype bfloat16

`--device cuda` (or `auto`: CUDA where PyTorch sees a GPU) runs the model and
the image on the GPU and synchronizes before and after each timed step; float32
on CUDA runs with TF32 off (matmul and cuDNN), so it is true fp32. `--dtype
bfloat16` casts the model and the image (the loss is summed in float32). The
GEMM peak is then measured on that device and dtype (8192³ on CUDA).
"""

import argparse
import json
import os
import re
import statistics
import sys
import time
import warnings

import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def pick_device(name: str) -> torch.device:
    """The device --device names; `auto` is CUDA where PyTorch sees a GPU, else the CPU. On CUDA, TF32 is off."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("error: --device 'cuda': PyTorch sees no CUDA device: use --device cpu or auto")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return torch.device(name)


def features(name: str, device=torch.device("cpu"), dtype=torch.float32):
    """(image size, f(x, L)) for the untrained model of weights/NAME on device in dtype: f runs input processing,
    then blocks 1..L."""
    with open(os.path.join(HERE, "..", "weights", name, "manifest.json")) as f:
        m = json.load(f)
    arch, size = m["architecture"], m["image_size"]
    import torchvision

    if arch == "vit":
        model = getattr(torchvision.models, re.match(r"vit_[blh]_\d+", name).group(0))(image_size=size)

        def f(x, layer):
            t = model._process_input(x)
            t = torch.cat([model.class_token.expand(x.shape[0], -1, -1), t], dim=1) + model.encoder.pos_embedding
            for i in range(layer):
                t = model.encoder.layers[i](t)
            return t
    elif arch == "resnet":
        if name != "resnet50":
            raise SystemExit(f"error: --model {name!r}: the ResNet baseline is torchvision's resnet50")
        model = torchvision.models.resnet50()
        blocks = [b for s in (model.layer1, model.layer2, model.layer3, model.layer4) for b in s]

        def f(x, layer):
            t = model.maxpool(model.relu(model.bn1(model.conv1(x))))
            for b in blocks[:layer]:
                t = b(t)
            return t
    elif arch in ("mixer", "ffvit"):
        from vitrep_convert.mixer import finish_cfg
        from vitrep_convert.mixer_ref import RefLinearViT, RefMixer

        cfg = finish_cfg(dict(arch=arch, patch_size=m["patch_size"], num_layers=m["num_layers"],
                                      hidden_dim=m["hidden_dim"], tokens_mlp_dim=m["tokens_mlp_dim"],
                                      channels_mlp_dim=m["channels_mlp_dim"], order=m["block_order"],
                                      num_classes=m["num_classes"]), size)
        model = (RefMixer if arch == "mixer" else RefLinearViT)(cfg)

        def f(x, layer):
            t = model.embed(x)
            for b in model.blocks[:layer]:
                t = b(t)
            return t
    else:
        raise SystemExit(f"error: --model {name!r}: unknown architecture {arch!r}")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    model.to(device=device, dtype=dtype)
    return size, f


def blas_name() -> str:
    try:
        info = torch.__config__.show()
        if "BLAS_INFO=mkl" in info:
            return "mkl"
        if "BLAS_INFO=generic" in info:  # Debian: the system libblas, i.e. what alternatives point at
            import glob

            links = glob.glob("/etc/alternatives/libblas.so.3*")
            blas = os.path.basename(os.path.dirname(os.path.realpath(links[0]))) if links else "generic"
            if blas in ("blas", "x86_64-linux-gnu"):
                blas = "reference BLAS (install libopenblas0-openmp for a fair baseline)"
            return blas
    except Exception:  # noqa: BLE001
        pass
    return "unknown"


def blas_config() -> dict:
    """The OpenBLAS build and kernel this process loaded (empty when the BLAS is not OpenBLAS)."""
    import ctypes

    torch.mm(torch.ones(8, 8), torch.ones(8, 8))  # make sure the BLAS is loaded
    with open("/proc/self/maps") as f:
        paths = sorted({line.split()[-1] for line in f if "openblas" in line and ".so" in line})
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_config.restype = ctypes.c_char_p
            lib.openblas_get_corename.restype = ctypes.c_char_p
            return {"config": lib.openblas_get_config().decode(), "kernel": lib.openblas_get_corename().decode(),
                    "library": path}
        except (OSError, AttributeError):
            continue
    return {}


def sync(device: torch.device):
    """Waits for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def sgemm_peak(n: int = 1024, repeats: int = 9, device=torch.device("cpu"), dtype=torch.float32) -> float:
    """Median GFLOP/s of an n×n×n matrix product (2n³ FLOPs) at the current thread count, on device in dtype."""
    a, b = torch.rand(n, n, device=device, dtype=dtype), torch.rand(n, n, device=device, dtype=dtype)
    for _ in range(2):
        torch.mm(a, b)
    times = []
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        torch.mm(a, b)
        sync(device)
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


def is_fused_attention(packet) -> bool:
    """Whether an aten op is one of the fused attention kernels (flash, efficient, cuDNN, CPU flash) that newer
    PyTorch dispatches instead of bmm; the math fallback decomposes into bmm and is counted there."""
    name = str(packet).rsplit(".", 1)[-1]
    return name.startswith("_scaled_dot_product_") and "attention" in name and "math" not in name \
        and "backward" not in name


def forward_flops(f, x, layer: int) -> float:
    """FLOPs of f(x, layer) counted from the matrix products and convolutions PyTorch dispatches."""
    from torch.utils._python_dispatch import TorchDispatchMode

    aten = torch.ops.aten
    total = [0.0]

    def numel(shape):
        n = 1
        for d in shape:
            n *= d
        return n

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            p = func.overloadpacket
            if p in (aten.mm, aten.addmm, aten.bmm, aten.baddbmm):
                a, b = (args[0], args[1]) if p in (aten.mm, aten.bmm) else (args[1], args[2])
                total[0] += 2 * numel(a.shape) * b.shape[-1]
            elif p is aten.convolution:
                w = args[1]
                total[0] += 2 * numel(out.shape) * numel(w.shape[1:])
            elif is_fused_attention(p):  # q [..., L, E], k [..., S, E]: Q·Kᵀ and P·V
                total[0] += 4 * numel(args[0].shape) * args[1].shape[-2]
            return out

    with Count():  # with a gradient, as in the timed step (no fused attention fast path)
        f(x.clone().requires_grad_(True), layer)
    return total[0]


def write_matmul_graph(path: str, n: int = 1024) -> None:
    """An ONNX graph of one n×n×n float32 MatMul (inputs a, b; output c): what `deno task bench` times
    on each onnxruntime backend for its own GEMM peak."""
    import onnx
    from onnx import TensorProto, helper

    io = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, n])  # noqa: E731
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul", [io("a"), io("b")],
                              [io("c")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--write-matmul-graph":
        write_matmul_graph(sys.argv[2])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="vit_b_32")
    ap.add_argument("--layers", default="1,4,12")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", default="1", help="batch sizes, e.g. 1,8 (results keyed LAYER or LAYERxB)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"],
                    help="cpu (default), cuda, or auto: cuda where PyTorch sees a GPU")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--serve", action="store_true",
                    help="answer timing requests, one JSON line each on stdin (see serve())")
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    device, dtype = pick_device(a.device), getattr(torch, a.dtype)
    size, f = features(a.model, device, dtype)
    stepper = Stepper(f, size, device, dtype)
    if a.serve:
        serve(stepper, a.threads)
        return
    results, flops = {}, {}
    for layer, batch in [(int(v), int(b)) for v in a.layers.split(",") for b in a.batch.split(",")]:
        key = str(layer) if batch == 1 else f"{layer}x{batch}"
        results[key] = statistics.median(stepper.times(layer, batch, a.repeats, a.warmup))
        flops[key] = stepper.gflop(layer, batch)
    env = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    gpu = device.type == "cuda"
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "blas": blas_name(),
                      "blas_config": blas_config(), "env": env,
                      "sgemm_gflops": sgemm_peak(8192 if gpu else 1024, device=device, dtype=dtype),
                      "device": device.type, "dtype": a.dtype,
                      "device_name": torch.cuda.get_device_name(device) if gpu else "CPU",
                      "tf32": gpu and torch.backends.cuda.matmul.allow_tf32,
                      "model": a.model, "median_ms": results, "step_gflop": flops}))


class Stepper:
    """The timed step of one model: a fixed random batch per (layer, batch), its target (own output + 0.1)
    and FLOPs computed once."""

    def __init__(self, f, size: int, device, dtype):
        self.f, self.size, self.device, self.dtype = f, size, device, dtype
        self.cases = {}

    def case(self, layer: int, batch: int):
        if (layer, batch) not in self.cases:
            x0 = torch.rand(batch, 3, self.size, self.size, device=self.device, dtype=self.dtype)
            with torch.no_grad():
                target = self.f(x0, layer) + 0.1
            self.cases[(layer, batch)] = (x0, target)
        return self.cases[(layer, batch)]

    def gflop(self, layer: int, batch: int) -> float:
        """The input gradient repeats every forward product once more (dX = dY·Wᵀ), with no weight gradients."""
        return 2 * forward_flops(self.f, self.case(layer, batch)[0], layer) / 1e9

    def times(self, layer: int, batch: int, repeats: int, warmup: int):
        x0, target = self.case(layer, batch)
        times = []
        for i in range(warmup + repeats):
            x = x0.clone().requires_grad_(True)
            sync(self.device)
            t = time.perf_counter()
            loss = ((self.f(x, layer) - target).float() ** 2).sum()
            loss.backward()
            _ = x.grad
            sync(self.device)
            if i >= warmup:
                times.append((time.perf_counter() - t) * 1000)
        return times


def serve(stepper: Stepper, threads: int) -> None:
    """`--serve`: after one line describing the setup, answers one JSON request per stdin line with one JSON line —
    {"layer", "batch", "repeats", "warmup"} → {"ms": [...]}; {"gflop": true, "layer", "batch"} → {"gflop": G};
    {"sgemm": true} → {"gflops": G} (1024³). `deno task bench` alternates these requests with its own steps, so
    both sides are timed in the same minutes."""
    c = blas_config()
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "blas": blas_name(),
                      "blas_config": c}), flush=True)
    for line in sys.stdin:
        r = json.loads(line)
        if r.get("sgemm"):
            out = {"gflops": sgemm_peak(1024, repeats=3)}
        elif r.get("gflop"):
            out = {"gflop": stepper.gflop(r["layer"], r["batch"])}
        else:
            out = {"ms": stepper.times(r["layer"], r["batch"], r["repeats"], r.get("warmup", 0))}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
