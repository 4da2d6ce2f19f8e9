#!/usr/bin/env python3
"""Fixture: starts sleeping children until fork fails (at most --max_children, 200 by
default). Each child leaves the process group (setsid) and runs a sleeper whose
environment lacks GENESIS_LAUNCH_JOB, so only the job's cgroup still holds it.
metrics.json: {forked: n, error: the fork error or null}, and children.pids lists
them; exits 0 with correct.json true."""
import argparse
import errno
import json
import os
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--program_path", required=True)
parser.add_argument("--results_dir", required=True)
parser.add_argument("--max_children", type=int, default=200)
args, _unknown = parser.parse_known_args()
os.makedirs(args.results_dir, exist_ok=True)

env = {k: v for k, v in os.environ.items() if k != "GENESIS_LAUNCH_JOB"}
children = []
error = None
while len(children) < args.max_children:
    try:
        pid = os.fork()
    except OSError as e:
        error = errno.errorcode.get(e.errno, str(e.errno))
        break
    if pid == 0:
        os.setsid()
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.execve(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)"], env)
    children.append(pid)
with open(os.path.join(args.results_dir, "children.pids"), "w") as f:
    f.write("\n".join(str(p) for p in children))
with open(os.path.join(args.results_dir, "metrics.json"), "w") as f:
    json.dump({"forked": len(children), "error": error}, f)
with open(os.path.join(args.results_dir, "correct.json"), "w") as f:
    json.dump({"correct": True, "error": None}, f)
