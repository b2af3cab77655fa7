#!/usr/bin/env python3
"""PyTorch side of `deno task bench`: the same step as vitrep's inputGradient —
forward through input processing and encoders 1..L, an L2 feature loss, and the
gradient with respect to the image — timed on the CPU. Prints one JSON line.

    python3 tools/bench_torch.py --model vit_b_32 --layers 1,4,12 --repeats 9 --threads 2
"""

import argparse
import json
import statistics
import time
import warnings

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="vit_b_32")
    ap.add_argument("--layers", default="1,4,12")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--image-size", type=int, default=224)
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    import torchvision

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = getattr(torchvision.models, a.model)(image_size=a.image_size).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x0 = torch.rand(1, 3, a.image_size, a.image_size)

    def tokens(x, layer):
        t = model._process_input(x)
        t = torch.cat([model.class_token.expand(1, -1, -1), t], dim=1) + model.encoder.pos_embedding
        for i in range(layer):
            t = model.encoder.layers[i](t)
        return t

    results = {}
    for layer in [int(v) for v in a.layers.split(",")]:
        with torch.no_grad():
            target = tokens(x0, layer) + 0.1
        times = []
        for i in range(a.warmup + a.repeats):
            x = x0.clone().requires_grad_(True)
            t = time.perf_counter()
            loss = ((tokens(x, layer) - target) ** 2).sum()
            loss.backward()
            _ = x.grad
            if i >= a.warmup:
                times.append((time.perf_counter() - t) * 1000)
        results[str(layer)] = statistics.median(times)
    blas = "unknown"
    try:
        info = torch.__config__.show()
        if "BLAS_INFO=mkl" in info:
            blas = "mkl"
        elif "BLAS_INFO=generic" in info:  # Debian: the system libblas, i.e. what alternatives point at
            import glob
            import os

            links = glob.glob("/etc/alternatives/libblas.so.3*")
            blas = os.path.basename(os.path.dirname(os.path.realpath(links[0]))) if links else "generic"
            if blas in ("blas", "x86_64-linux-gnu"):
                blas = "reference BLAS (install libopenblas0-openmp for a fair baseline)"
    except Exception:  # noqa: BLE001
        pass
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "blas": blas,
                      "model": a.model, "median_ms": results}))


if __name__ == "__main__":
    main()
