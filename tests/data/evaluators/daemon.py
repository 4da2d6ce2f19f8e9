#!/usr/bin/env python3
"""Fixture: starts a daemon the classic way (fork, setsid, fork again; standard streams
to /dev/null), which runs `python -c <sleep 600> <started-file> <token>` so that it can
be found by --token in its command line. Waits until the daemon wrote
results_dir/daemon.started, then exits 0 with correct.json true."""
import argparse
import json
import os
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--program_path", required=True)
parser.add_argument("--results_dir", required=True)
parser.add_argument("--token", required=True)
args, _unknown = parser.parse_known_args()
os.makedirs(args.results_dir, exist_ok=True)
started = os.path.join(args.results_dir, "daemon.started")

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        code = "import sys, time; open(sys.argv[1], 'w').close(); time.sleep(600)"
        os.execv(sys.executable, [sys.executable, "-c", code, started, args.token])
    os._exit(0)
os.wait()
deadline = time.time() + 30
while not os.path.exists(started) and time.time() < deadline:
    time.sleep(0.01)
print("daemon started" if os.path.exists(started) else "daemon did not start")
with open(os.path.join(args.results_dir, "correct.json"), "w") as f:
    json.dump({"correct": os.path.exists(started), "error": None}, f)
