#!/usr/bin/env python3
"""Fixture: prints "started", then writes its pid to results_dir/evaluator.pid (temp file +
rename) and sleeps 600 s (for tests of what happens to a running evaluator). Once the pid
file exists it writes nothing more, so a reader that went away cannot end it (EPIPE)."""
import argparse
import os
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--program_path", required=True)
parser.add_argument("--results_dir", required=True)
args, _unknown = parser.parse_known_args()
os.makedirs(args.results_dir, exist_ok=True)
print("started")
sys.stdout.flush()
pid_file = os.path.join(args.results_dir, "evaluator.pid")
with open(pid_file + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(pid_file + ".tmp", pid_file)
time.sleep(600)
