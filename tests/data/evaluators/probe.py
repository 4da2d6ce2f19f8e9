#!/usr/bin/env python3
"""Fixture: reports what the evaluator process sees into metrics.json and exits 0 with
correct.json true. metrics.json holds:
  limits: {AS, CPU, FSIZE, NOFILE, CORE: [soft, hard]} (-1 = unlimited)
  tmpdir: $TMPDIR (or null), gettempdir: tempfile.gettempdir(), temp_file: a file it created there
  marker: whether GENESIS_LAUNCH_JOB is set
  fds: {fd: target} of open descriptors, except the one used to list them
  interfaces: network interfaces of its namespace (/proc/self/net/dev)
  pdeathsig: the parent-death signal (prctl PR_GET_PDEATHSIG)
  uid, gid: its ids
  sigblk, sigign: its blocked and ignored signals (/proc/self/status masks, as integers)
"""
import argparse
import ctypes
import json
import os
import resource
import tempfile

parser = argparse.ArgumentParser()
parser.add_argument("--program_path", required=True)
parser.add_argument("--results_dir", required=True)
args, _unknown = parser.parse_known_args()
os.makedirs(args.results_dir, exist_ok=True)


def limit(which):
    soft, hard = resource.getrlimit(which)
    return [-1 if v == resource.RLIM_INFINITY else v for v in (soft, hard)]


fds = {}
listing = "/proc/self/fd"
for name in os.listdir(listing):
    try:
        target = os.readlink(os.path.join(listing, name))
    except OSError:
        continue  # the descriptor os.listdir used, already closed
    fds[name] = target

interfaces = []
with open("/proc/self/net/dev") as f:
    for line in f.readlines()[2:]:
        interfaces.append(line.split(":")[0].strip())

libc = ctypes.CDLL(None, use_errno=True)
sig = ctypes.c_int(0)
libc.prctl(2, ctypes.byref(sig), 0, 0, 0)  # PR_GET_PDEATHSIG

signals = {}
with open("/proc/self/status") as f:
    for line in f:
        key, _, value = line.partition(":")
        if key in ("SigBlk", "SigIgn"):
            signals[key.lower()] = int(value.strip(), 16)

handle, temp_file = tempfile.mkstemp(prefix="probe-")
os.close(handle)

report = {
    "combined_score": 1.0,
    "limits": {n: limit(getattr(resource, "RLIMIT_" + n)) for n in ("AS", "CPU", "FSIZE", "NOFILE", "CORE")},
    "tmpdir": os.environ.get("TMPDIR"),
    "gettempdir": tempfile.gettempdir(),
    "temp_file": temp_file,
    "marker": "GENESIS_LAUNCH_JOB" in os.environ,
    "fds": fds,
    "interfaces": interfaces,
    "pdeathsig": sig.value,
    "uid": os.getuid(),
    "gid": os.getgid(),
    "sigblk": signals.get("sigblk"),
    "sigign": signals.get("sigign"),
}
with open(os.path.join(args.results_dir, "metrics.json"), "w") as f:
    json.dump(report, f)
with open(os.path.join(args.results_dir, "correct.json"), "w") as f:
    json.dump({"correct": True, "error": None}, f)
