#!/usr/bin/env python3
"""Fixture: writes its pid to results_dir/evaluator.pid (temp file + rename), prints
"started" and sleeps 600 s (for tests of what happens to a running evaluator)."""
import argparse
import os
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--program_path", required=True)
parser.add_argument("--results_dir", required=True)
args, _unknown = parser.parse_known_args()
os.makedirs(args.results_dir, exist_ok=True)
pid_file = os.path.join(args.results_dir, "evaluator.pid")
with open(pid_file + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(pid_file + ".tmp", pid_file)
print("started")
sys.stdout.flush()
time.sleep(600)
