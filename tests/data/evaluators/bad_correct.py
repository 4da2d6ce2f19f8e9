#!/usr/bin/env python3
"""Fixture: writes a truncated correct.json and a metrics.json that is not JSON, exits 0."""
import argparse
import os

parser = argparse.ArgumentParser()
parser.add_argument("--program_path", required=True)
parser.add_argument("--results_dir", required=True)
args, _unknown = parser.parse_known_args()
os.makedirs(args.results_dir, exist_ok=True)

with open(os.path.join(args.results_dir, "correct.json"), "w") as f:
    f.write('{"correct": "yes"')  # malformed on purpose (unterminated, and not a bool)
with open(os.path.join(args.results_dir, "metrics.json"), "w") as f:
    f.write("not json")
