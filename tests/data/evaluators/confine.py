#!/usr/bin/env python3
"""Fixture: tries what a confined evaluator must not do and reports each attempt into
metrics.json, then exits 0 with correct.json true. metrics.json holds:
  connect: "ok" or the error of a TCP connection to 127.0.0.1:--port
  writes: {label: "ok" or the error} for new files in: cwd, /etc, the candidate's folder,
          $HOME, results_dir, $TMPDIR, /tmp (file --tmp_name; kept there)
  tmpdir: $TMPDIR
With --writes no only the connection is tried. Files that could be written are removed
again, except the one in /tmp."""
import argparse
import json
import os
import socket

parser = argparse.ArgumentParser()
parser.add_argument("--program_path", required=True)
parser.add_argument("--results_dir", required=True)
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--tmp_name", default="genesis-confine-probe")
parser.add_argument("--writes", default="yes")
args, _unknown = parser.parse_known_args()
os.makedirs(args.results_dir, exist_ok=True)


def error_text(e):
    return type(e).__name__ + ": " + str(e)


try:
    with socket.create_connection(("127.0.0.1", args.port), timeout=5):
        connect = "ok"
except OSError as e:
    connect = error_text(e)

writes = {}
if args.writes == "yes":
    name = "genesis-confine-%d" % os.getpid()
    targets = {
        "cwd": os.getcwd(),
        "etc": "/etc",
        "candidate": os.path.dirname(os.path.abspath(args.program_path)),
        "home": os.path.expanduser("~"),
        "results": args.results_dir,
        "tmpdir": os.environ.get("TMPDIR", "/nonexistent"),
    }
    for label, folder in targets.items():
        path = os.path.join(folder, name)
        try:
            with open(path, "w") as f:
                f.write("x")
            os.remove(path)
            writes[label] = "ok"
        except OSError as e:
            writes[label] = error_text(e)
    try:
        with open(os.path.join("/tmp", args.tmp_name), "w") as f:
            f.write("x")
        writes["tmp"] = "ok"
    except OSError as e:
        writes["tmp"] = error_text(e)

with open(os.path.join(args.results_dir, "metrics.json"), "w") as f:
    json.dump({"connect": connect, "writes": writes, "tmpdir": os.environ.get("TMPDIR")}, f)
with open(os.path.join(args.results_dir, "correct.json"), "w") as f:
    json.dump({"correct": True, "error": None}, f)
