#!/usr/bin/env python3
"""Adds the `runtime` object (what the TypeScript runtime must know about a family; see
tools/vitrep_convert/family.py) to manifests written before the converter wrote it, as the
converter writes it now, without touching anything else (graphs, weights, other fields stay
byte-identical): the line goes after `batch_axis`.

    python3 tools/manifest_runtime.py weights/*/manifest.json          # add where missing
    python3 tools/manifest_runtime.py --check weights/*/manifest.json  # exit 1 if one lacks it or differs
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vitrep_convert import registry  # noqa: E402
from vitrep_convert.manifest import dump_json  # noqa: E402


def with_runtime(text: str) -> str:
    """The manifest text with its family's `runtime` object after `batch_axis` (replacing an
    earlier one)."""
    m = json.loads(text)
    runtime = registry.by_architecture(m["architecture"]).runtime_fields(m)
    lines = text.split("\n")
    if "runtime" in m:
        start = next(i for i, s in enumerate(lines) if s.startswith(' "runtime": '))
        end = next(i for i in range(start, len(lines)) if lines[i] == " },")
        del lines[start:end + 1]
    at = next((i for i, s in enumerate(lines) if s.startswith(' "batch_axis": ')), None)
    if at is None:
        raise SystemExit(f"error: {m['name']}: no \"batch_axis\" line to put \"runtime\" after")
    lines.insert(at + 1, f' "runtime": {dump_json(runtime, 1)},')
    out = "\n".join(lines)
    if json.loads(out) != {**m, "runtime": runtime}:
        raise SystemExit(f"error: {m['name']}: adding \"runtime\" would change other fields")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("manifests", nargs="+", help="manifest.json files")
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 where one lacks it or differs")
    a = ap.parse_args(argv)
    bad = 0
    for path in a.manifests:
        with open(path) as f:
            text = f.read()
        new = with_runtime(text)
        if new == text:
            continue
        if a.check:
            print(f"{path}: \"runtime\" missing or not what the converter writes", file=sys.stderr)
            bad += 1
            continue
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(new)
        os.replace(tmp, path)
        print(f"wrote {path}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
