#!/usr/bin/env python3
"""Fixture: a well-behaved evaluator (stdlib only).

Writes valid metrics.json / correct.json, echoes its argv and selected env vars so tests can
check how the launcher started it, copies the candidate byte-for-byte and writes a binary
extra file (bytes 0..255 repeated 4 times) to check that binary results come back exact.
"""
import argparse
import json
import os
import shutil
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--program_path", required=True)
parser.add_argument("--results_dir", required=True)
args, _unknown = parser.parse_known_args()  # extra_cmd_args are tolerated
os.makedirs(args.results_dir, exist_ok=True)

print("hello stdout")
print("hello stderr", file=sys.stderr)
# Everything after the script name, exactly as received.
print("ARGS: " + json.dumps(sys.argv[1:]))
# Env vars the launcher is expected to set or pass through (null when unset).
env = {k: os.environ.get(k) for k in ("PYTHONUNBUFFERED", "PYTHONIOENCODING", "GENESIS_TEST_VAR")}
print("ENV: " + json.dumps(env, sort_keys=True))
sys.stdout.flush()

with open(os.path.join(args.results_dir, "metrics.json"), "w") as f:
    json.dump(
        {"combined_score": 1.5, "public": {"a": 1}, "private": {"b": 2}, "text_feedback": "fine"}, f
    )
with open(os.path.join(args.results_dir, "correct.json"), "w") as f:
    json.dump({"correct": True, "error": None}, f)

# Byte-exact copy of the candidate program.
shutil.copyfile(args.program_path, os.path.join(args.results_dir, "candidate_copy.bin"))
# Binary extra: every byte value, 1024 bytes in total (not valid UTF-8).
with open(os.path.join(args.results_dir, "extra.bin"), "wb") as f:
    f.write(bytes(range(256)) * 4)
