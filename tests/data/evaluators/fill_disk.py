#!/usr/bin/env python3
"""Fixture: writes 1 MiB blocks into results_dir/fill.bin until a write fails (a full
disk, or the file size limit), printing how much got written; the error ends it with
a traceback (exit 1). Never writes results."""
import argparse
import os

parser = argparse.ArgumentParser()
parser.add_argument("--program_path", required=True)
parser.add_argument("--results_dir", required=True)
args, _unknown = parser.parse_known_args()
os.makedirs(args.results_dir, exist_ok=True)

block = b"\0" * (1024 * 1024)
written = 0
with open(os.path.join(args.results_dir, "fill.bin"), "wb", buffering=0) as f:
    try:
        while True:
            written += f.write(block)
    finally:
        print("written", written, flush=True)
