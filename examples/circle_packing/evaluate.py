#!/usr/bin/env python3
"""Evaluator for the circle-packing example (ShinkaEvolve / Genesis evaluation contract).

Usage:
    python3 evaluate.py --program_path CANDIDATE.py --results_dir DIR [--num_circles 26]

The candidate must define `run_packing()` returning `(centers, radii, sum_of_radii)` with
centers of shape (n, 2) and radii of shape (n,). The packing is valid when all values are
finite, radii are non-negative, the reported sum matches radii.sum(), every circle lies
inside the unit square and no two circles overlap. The score is the sum of the radii
(0.0 for an invalid or failing candidate).

Writes into DIR (created if missing):
    metrics.json  {"combined_score", "public", "private", "text_feedback"}
    correct.json  {"correct": bool, "error": null | string}
    extra.npz     centers and radii (only when the candidate produced arrays)

A failing candidate is a normal evaluation result: this script still exits 0. It exits
non-zero only when its own command-line arguments are wrong.
"""

import argparse
import importlib.machinery
import importlib.util
import json
import os
import sys
import time
import traceback

import numpy as np

SUM_ATOL = 1e-6  # reported sum vs. radii.sum()
GEOM_TOL = 1e-12  # slack for containment and overlap checks (absorbs float rounding only)


class InvalidPacking(Exception):
    """The candidate ran but its packing breaks a rule."""


def load_module(program_path):
    """Import the candidate from its path, whatever its file name or extension."""
    path = os.path.abspath(program_path)
    name = "candidate_program"
    sys.dont_write_bytecode = True  # leave no __pycache__ next to the candidate
    loader = importlib.machinery.SourceFileLoader(name, path)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    # Let the candidate import helper modules that sit next to it.
    sys.path.insert(0, os.path.dirname(path))
    try:
        loader.exec_module(module)
    finally:
        try:
            sys.path.remove(os.path.dirname(path))
        except ValueError:
            pass
    return module


def run_candidate(program_path):
    """Import the candidate and call run_packing(); returns its raw result."""
    module = load_module(program_path)
    if not hasattr(module, "run_packing"):
        raise InvalidPacking("candidate does not define run_packing()")
    return module.run_packing()


def to_arrays(result, n):
    """Unpack and convert the candidate's result; raises InvalidPacking on a bad shape/type."""
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        raise InvalidPacking(
            "run_packing() must return (centers, radii, sum_of_radii), got "
            f"{type(result).__name__}"
            + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else "")
        )
    centers_raw, radii_raw, reported_raw = result
    try:
        centers = np.asarray(centers_raw, dtype=float)
        radii = np.asarray(radii_raw, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidPacking(f"centers/radii are not numeric arrays: {exc}") from None
    try:
        reported = float(reported_raw)
    except (TypeError, ValueError):
        raise InvalidPacking(
            f"sum_of_radii is not a number: {reported_raw!r}"[:300]
        ) from None
    return centers, radii, reported


def validate(centers, radii, reported, n):
    """Raise InvalidPacking with a readable message at the first broken rule."""
    if centers.shape != (n, 2):
        raise InvalidPacking(f"centers has shape {centers.shape}, expected ({n}, 2)")
    if radii.shape != (n,):
        raise InvalidPacking(f"radii has shape {radii.shape}, expected ({n},)")
    if not np.all(np.isfinite(centers)):
        raise InvalidPacking("centers contain NaN or infinite values")
    if not np.all(np.isfinite(radii)):
        raise InvalidPacking("radii contain NaN or infinite values")
    if not np.isfinite(reported):
        raise InvalidPacking(f"reported sum_of_radii is not finite: {reported}")
    negative = np.flatnonzero(radii < 0)
    if negative.size:
        i = int(negative[0])
        raise InvalidPacking(
            f"{negative.size} negative radii, e.g. radii[{i}] = {radii[i]!r}"
        )
    actual = float(radii.sum())
    if abs(actual - reported) > SUM_ATOL:
        raise InvalidPacking(
            f"reported sum_of_radii {reported!r} differs from radii.sum() {actual!r} "
            f"by more than {SUM_ATOL}"
        )

    x, y = centers[:, 0], centers[:, 1]
    outside = (
        (x - radii < -GEOM_TOL)
        | (x + radii > 1.0 + GEOM_TOL)
        | (y - radii < -GEOM_TOL)
        | (y + radii > 1.0 + GEOM_TOL)
    )
    if np.any(outside):
        bad = np.flatnonzero(outside)
        i = int(bad[0])
        raise InvalidPacking(
            f"{bad.size} circle(s) leave the unit square, e.g. circle {i} at "
            f"({x[i]:.6f}, {y[i]:.6f}) with radius {radii[i]:.6f}"
        )

    diff = centers[:, None, :] - centers[None, :, :]
    dist = np.sqrt((diff ** 2).sum(axis=-1))
    need = radii[:, None] + radii[None, :]
    iu, ju = np.triu_indices(n, k=1)
    overlap = dist[iu, ju] < need[iu, ju] - GEOM_TOL
    if np.any(overlap):
        k = int(np.flatnonzero(overlap)[0])
        i, j = int(iu[k]), int(ju[k])
        raise InvalidPacking(
            f"{int(overlap.sum())} overlapping pair(s), e.g. circles {i} and {j}: "
            f"distance {dist[i, j]:.9f} < r{i} + r{j} = {need[i, j]:.9f}"
        )
    return actual


def centers_listing(centers, radii):
    """Short human-readable listing of the circles (shown to the LLM)."""
    lines = []
    for i, ((x, y), r) in enumerate(zip(centers, radii)):
        lines.append(f"circle {i:2d}: center=({x:.4f}, {y:.4f}) radius={r:.4f}")
    return "\n".join(lines)


def save_npz(path, **arrays):
    """Like np.savez, but the same arrays always give the same bytes: members are
    stored with a fixed timestamp, so a result can be compared byte for byte
    across runs and machines (np.savez stamps the current time)."""
    import io
    import zipfile

    tmp = path + ".tmp"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asanyarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())
    os.replace(tmp, path)


def write_json(path, obj):
    """Write JSON via a temporary file so readers never see a partial file."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, allow_nan=False)
        f.write("\n")
    os.replace(tmp, path)


def short_traceback(exc):
    """Traceback summary: the candidate's own frames (last few) plus the exception line."""
    frames = [
        fr
        for fr in traceback.extract_tb(exc.__traceback__)
        if fr.filename != os.path.abspath(__file__) and not fr.filename.startswith("<frozen")
    ]
    lines = ["Traceback (most recent call last):\n"] if frames else []
    lines += traceback.format_list(frames[-5:])
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).strip()[-2000:]


def evaluate(program_path, results_dir, n):
    start = time.perf_counter()
    centers = radii = None
    reported = None
    error = None
    score = 0.0

    try:
        result = run_candidate(program_path)
        centers, radii, reported = to_arrays(result, n)
        score = validate(centers, radii, reported, n)
    except InvalidPacking as exc:
        error = f"invalid packing: {exc}"
    except (Exception, SystemExit) as exc:  # the candidate raised (or called sys.exit)
        error = f"candidate raised {type(exc).__name__}: {exc}\n{short_traceback(exc)}"
    eval_time = time.perf_counter() - start

    correct = error is None
    if not correct:
        score = 0.0

    if correct:
        feedback = (
            f"Valid packing of {n} circles in the unit square; sum of radii = {score:.6f}"
            + (" (best known for 26 circles is about 2.635)." if n == 26 else ".")
        )
    else:
        feedback = f"The packing was rejected, score 0.0. {error}"

    public = {
        "num_circles": n,
        "centers_str": centers_listing(centers, radii)
        if correct
        else "(no valid packing)",
        "sum_radii": score,
    }
    reported_json = (
        reported if reported is not None and np.isfinite(reported) else None
    )
    private = {"reported_sum": reported_json, "eval_time_s": eval_time}
    metrics = {
        "combined_score": score,
        "public": public,
        "private": private,
        "text_feedback": feedback,
    }

    if centers is not None and radii is not None:
        try:
            save_npz(os.path.join(results_dir, "extra.npz"), centers=centers, radii=radii)
        except Exception as exc:  # never let an extras problem hide the result
            print(f"warning: could not write extra.npz: {exc}", file=sys.stderr)

    write_json(os.path.join(results_dir, "metrics.json"), metrics)
    write_json(
        os.path.join(results_dir, "correct.json"), {"correct": correct, "error": error}
    )
    return correct, score, error


def main(argv=None):
    parser = argparse.ArgumentParser(description="Evaluate a circle-packing candidate.")
    parser.add_argument("--program_path", required=True, help="candidate program file")
    parser.add_argument("--results_dir", required=True, help="directory for result files")
    parser.add_argument("--num_circles", type=int, default=26, help="expected circle count")
    args = parser.parse_args(argv)
    if args.num_circles < 1:
        parser.error("--num_circles must be at least 1")
    if not os.path.isfile(args.program_path):
        parser.error(f"--program_path {args.program_path!r} is not a file")

    os.makedirs(args.results_dir, exist_ok=True)
    print(f"Evaluating {args.program_path} ({args.num_circles} circles)", flush=True)
    correct, score, error = evaluate(args.program_path, args.results_dir, args.num_circles)
    if correct:
        print(f"Valid packing: combined_score = {score!r}", flush=True)
    else:
        first_line = error.splitlines()[0] if error else "unknown error"
        print(f"warning: candidate rejected: {first_line}", file=sys.stderr, flush=True)
        print("Invalid packing: combined_score = 0.0", flush=True)
    print(f"Results written to {args.results_dir}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
