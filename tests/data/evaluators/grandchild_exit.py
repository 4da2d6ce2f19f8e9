#!/usr/bin/env python3
"""Fixture: exits 0 normally but leaves a SIGTERM-ignoring grandchild behind.

Like grandchild.py, but once the grandchild has written results_dir/grandchild.pid the parent
writes valid correct.json / metrics.json and exits 0 at once. The grandchild keeps sleeping
(600 s) and keeps the inherited stdout/stderr open. Proves the launcher kills leftovers of the
process group after a normal exit (and does not hang waiting for end-of-file on the pipes).
"""
import argparse
import json
import os
import signal
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--program_path", required=True)
parser.add_argument("--results_dir", required=True)
args, _unknown = parser.parse_known_args()
os.makedirs(args.results_dir, exist_ok=True)
pid_file = os.path.join(args.results_dir, "grandchild.pid")

signal.signal(signal.SIGTERM, signal.SIG_IGN)
sys.stdout.flush()
sys.stderr.flush()
if os.fork() == 0:
    # Grandchild: ignores SIGTERM, publishes its pid atomically, sleeps.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    tmp = pid_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(os.getpid()))
    os.rename(tmp, pid_file)
    time.sleep(600)
    os._exit(0)

# Parent: poll for the pid file (up to 10 s), write valid results, exit 0.
deadline = time.time() + 10
while not os.path.exists(pid_file) and time.time() < deadline:
    time.sleep(0.01)
with open(os.path.join(args.results_dir, "metrics.json"), "w") as f:
    json.dump({"combined_score": 1.0}, f)
with open(os.path.join(args.results_dir, "correct.json"), "w") as f:
    json.dump({"correct": True, "error": None}, f)
print("parent done")
sys.stdout.flush()
sys.exit(0)
