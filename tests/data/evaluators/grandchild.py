#!/usr/bin/env python3
"""Fixture: leaves a SIGTERM-ignoring grandchild behind, then hangs.

The grandchild (os.fork, same process group) ignores SIGTERM, writes its pid to
results_dir/grandchild.pid (temp file + rename, so readers never see a partial pid) and sleeps
600 s. The parent also ignores SIGTERM, waits until the pid file exists, prints "spawned" and
sleeps 600 s. Proves the launcher kills the whole process group (SIGKILL) at a timeout.
"""
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
pid_file = os.path.join(args.results_dir, "grandchild.pid")

signal.signal(signal.SIGTERM, signal.SIG_IGN)
sys.stdout.flush()
sys.stderr.flush()
if os.fork() == 0:
    # Grandchild: inherits SIG_IGN for SIGTERM (set again to be explicit).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    tmp = pid_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(os.getpid()))
    os.rename(tmp, pid_file)
    time.sleep(600)
    os._exit(0)

# Parent: wait (up to 10 s) for the grandchild's pid file, then announce and hang.
deadline = time.time() + 10
while not os.path.exists(pid_file) and time.time() < deadline:
    time.sleep(0.01)
print("spawned")
sys.stdout.flush()
time.sleep(600)
