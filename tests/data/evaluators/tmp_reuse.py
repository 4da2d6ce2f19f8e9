#!/usr/bin/env python3
"""Fixture: reports the job's temp folder as it finds it into metrics.json, then uses it,
and exits 0 with correct.json true. metrics.json holds:
  tmpdir: $TMPDIR, ino: its inode number, mode: its permission bits, uid: its owner,
  entries: what it held at the start (sorted)
It then creates a file and a subfolder there and deletes both again (the folder is left
empty), unless --leave (the file stays). --escape also starts a sleeper in a new session
(outside the job's process group), its pid in results_dir/escaped.pid."""
import argparse
import json
import os
import subprocess
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--program_path", required=True)
parser.add_argument("--results_dir", required=True)
parser.add_argument("--leave", action="store_true")
parser.add_argument("--escape", action="store_true")
args, _unknown = parser.parse_known_args()
os.makedirs(args.results_dir, exist_ok=True)

tmp = os.environ["TMPDIR"]
st = os.stat(tmp)
report = {
    "combined_score": 1.0,
    "tmpdir": tmp,
    "ino": st.st_ino,
    "mode": st.st_mode & 0o7777,
    "uid": st.st_uid,
    "entries": sorted(os.listdir(tmp)),
}
with open(os.path.join(tmp, "left-by-a-job"), "w") as f:
    f.write("private\n")
os.mkdir(os.path.join(tmp, "sub"))
os.rmdir(os.path.join(tmp, "sub"))
if not args.leave:
    os.unlink(os.path.join(tmp, "left-by-a-job"))
if args.escape:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(args.results_dir, "escaped.pid"), "w") as f:
        f.write(str(child.pid))
with open(os.path.join(args.results_dir, "metrics.json"), "w") as f:
    json.dump(report, f)
with open(os.path.join(args.results_dir, "correct.json"), "w") as f:
    json.dump({"correct": True, "error": None}, f)
