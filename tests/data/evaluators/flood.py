#!/usr/bin/env python3
"""Fixture: writes --mib MiB (default 1024) of text lines to stdout as fast as it can,
then exits 0 with correct.json true."""
import argparse
import json
import os

parser = argparse.ArgumentParser()
parser.add_argument("--program_path", required=True)
parser.add_argument("--results_dir", required=True)
parser.add_argument("--mib", type=int, default=1024)
args, _unknown = parser.parse_known_args()
os.makedirs(args.results_dir, exist_ok=True)

line = b"x" * 1023 + b"\n"
block = line * 1024  # 1 MiB
for _ in range(args.mib):
    view = memoryview(block)
    while view:
        view = view[os.write(1, view):]
with open(os.path.join(args.results_dir, "correct.json"), "w") as f:
    json.dump({"correct": True, "error": None}, f)
