#!/usr/bin/env python3
"""Fixture: starts a sleeper in a new session (setsid: outside the job's process group)
that keeps the evaluator's stdout and stderr open, writes its pid to
results_dir/escaped.pid (temp file + rename), then exits 0 with correct.json true.
Proves the launcher finds and kills processes that left the job's process group."""
import argparse
import json
import os
import subprocess
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--program_path", required=True)
parser.add_argument("--results_dir", required=True)
args, _unknown = parser.parse_known_args()
os.makedirs(args.results_dir, exist_ok=True)

child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
pid_file = os.path.join(args.results_dir, "escaped.pid")
with open(pid_file + ".tmp", "w") as f:
    f.write(str(child.pid))
os.rename(pid_file + ".tmp", pid_file)
print("escaped", child.pid)
with open(os.path.join(args.results_dir, "correct.json"), "w") as f:
    json.dump({"correct": True, "error": None}, f)
