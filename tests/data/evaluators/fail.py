#!/usr/bin/env python3
"""Fixture: the evaluator reports an incorrect candidate, prints a traceback and exits 3
(or --exit_code)."""
import argparse
import json
import os
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--program_path", required=True)
parser.add_argument("--results_dir", required=True)
parser.add_argument("--exit_code", type=int, default=3)
args, _unknown = parser.parse_known_args()
os.makedirs(args.results_dir, exist_ok=True)

with open(os.path.join(args.results_dir, "correct.json"), "w") as f:
    json.dump({"correct": False, "error": "boom"}, f)

sys.stderr.write(
    "Traceback (most recent call last):\n"
    '  File "evaluate.py", line 42, in main\n'
    "    run_candidate()\n"
    "RuntimeError: boom\n"
)
sys.stderr.flush()
sys.exit(args.exit_code)
