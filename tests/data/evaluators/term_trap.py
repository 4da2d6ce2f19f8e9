#!/usr/bin/env python3
"""Fixture: on SIGTERM takes 0.3 s to "clean up", writes results_dir/sigterm and exits 0; prints "started"
once the handler is in place, then sleeps 600 s. Proves a stop reaches the evaluator
itself with SIGTERM (a chance to clean up) before any SIGKILL."""
import argparse
import os
import signal
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--program_path", required=True)
parser.add_argument("--results_dir", required=True)
args, _unknown = parser.parse_known_args()
os.makedirs(args.results_dir, exist_ok=True)


def on_term(signum, frame):
    time.sleep(0.3)
    with open(os.path.join(args.results_dir, "sigterm"), "w") as f:
        f.write("SIGTERM")
    os._exit(0)


signal.signal(signal.SIGTERM, on_term)
print("started")
sys.stdout.flush()
time.sleep(600)
