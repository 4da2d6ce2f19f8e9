#!/usr/bin/env python3
"""Fixture: floods stdout with 3,000,000 bytes (30000 lines of exactly 100 bytes including the
newline: "line %06d " + padding), then prints "LAST LINE" and exits 0 with correct.json true.
Tests the launcher's output cap (head/tail truncation with a mark)."""
import argparse
import json
import os
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--program_path", required=True)
parser.add_argument("--results_dir", required=True)
args, _unknown = parser.parse_known_args()
os.makedirs(args.results_dir, exist_ok=True)

out = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else sys.stdout
for i in range(30000):
    head = "line %06d " % i
    out.write((head + "x" * (99 - len(head)) + "\n").encode("ascii"))
out.write(b"LAST LINE\n")
out.flush()

with open(os.path.join(args.results_dir, "correct.json"), "w") as f:
    json.dump({"correct": True, "error": None}, f)
