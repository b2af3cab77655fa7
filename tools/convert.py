#!/usr/bin/env python3
"""Shim: `python3 tools/convert.py ...` runs the converter package tools/vitrep_convert
(see vitrep_convert/cli.py for the options, or `--help`)."""

import sys

from vitrep_convert.cli import main

if __name__ == "__main__":
    sys.exit(main())
