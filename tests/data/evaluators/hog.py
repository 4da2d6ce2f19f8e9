#!/usr/bin/env python3
"""Fixture: uses too much of one resource, chosen by --mode:
  memory: allocates 4 GiB at once (MemoryError under an address-space limit)
  cpu:    spins on the CPU for up to 600 s (SIGXCPU under a CPU-time limit)
  fsize:  writes 8 MiB into results_dir/big.bin (OSError EFBIG under a file-size limit)
Prints "done" and exits 0 if nothing stopped it (correct.json true)."""
import argparse
import json
import os
import time

parser = argparse.ArgumentParser()
parser.add_argument("--program_path", required=True)
parser.add_argument("--results_dir", required=True)
parser.add_argument("--mode", required=True, choices=["memory", "cpu", "fsize"])
args, _unknown = parser.parse_known_args()
os.makedirs(args.results_dir, exist_ok=True)

if args.mode == "memory":
    block = bytearray(4 * 1024 * 1024 * 1024)
    block[-1] = 1
elif args.mode == "cpu":
    deadline = time.time() + 600
    n = 0
    while time.time() < deadline:
        n += 1
else:
    with open(os.path.join(args.results_dir, "big.bin"), "wb") as f:
        for _ in range(8):
            f.write(b"\0" * (1024 * 1024))

print("done")
with open(os.path.join(args.results_dir, "correct.json"), "w") as f:
    json.dump({"correct": True, "error": None}, f)
