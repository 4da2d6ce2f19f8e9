#!/usr/bin/env python3
"""Fixture: measures how many copies of itself run at the same time.

Takes an extra `--state_dir D` (shared by all jobs of a test). Under an exclusive flock on
D/lock it increments D/current and raises D/max if current exceeds it; it then sleeps 0.3 s
and decrements D/current under the lock. A test reads D/max afterwards to check that
max_parallel_jobs was never exceeded. Writes correct.json {"correct": true}.
"""
import argparse
import fcntl
import json
import os
import time

parser = argparse.ArgumentParser()
parser.add_argument("--program_path", required=True)
parser.add_argument("--results_dir", required=True)
parser.add_argument("--state_dir", required=True)
args, _unknown = parser.parse_known_args()
os.makedirs(args.results_dir, exist_ok=True)
os.makedirs(args.state_dir, exist_ok=True)


def read_int(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (IOError, OSError, ValueError):
        return 0


def write_int(path, value):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(str(value))
    os.rename(tmp, path)


def update(delta):
    """Add delta to D/current (and track D/max) while holding the lock."""
    with open(os.path.join(args.state_dir, "lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            current = read_int(os.path.join(args.state_dir, "current")) + delta
            write_int(os.path.join(args.state_dir, "current"), current)
            if current > read_int(os.path.join(args.state_dir, "max")):
                write_int(os.path.join(args.state_dir, "max"), current)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


update(+1)
try:
    time.sleep(0.3)
finally:
    update(-1)

with open(os.path.join(args.results_dir, "correct.json"), "w") as f:
    json.dump({"correct": True, "error": None}, f)
